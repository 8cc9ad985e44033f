// Config by family (issue 10 item 8): one schema assembled from model.<family> / data.<kind> fragments, the Config
// type derived from it, and old flat keys rejected with their new names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  activeImageData, configKeys, DATA_KINDS, envName, IMAGE_KINDS, loadConfig, MODEL_FAMILIES, RENAMED, schema,
} from '../../../shared/config/index.js';
import { isLeaf, withFamilies } from '../../../shared/config/fragment.js';
import { SigmaError } from '../../../shared/errors.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sgt-config-families-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Runs fn, expects SGT_CONFIG_INVALID, and returns its message. */
function rejection(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SigmaError, String(e));
    assert.equal(e.code, 'SGT_CONFIG_INVALID');
    return e.message;
  }
  assert.fail('expected SGT_CONFIG_INVALID');
}

test('the ViT and image keys live under model.vit and data.<kind>; shared keys stay under model and data', () => {
  const keys = new Set(configKeys());
  for (const k of ['model.vit.variant', 'model.vit.imageSize', 'model.vit.patchSize', 'model.vit.patchInitGain', 'model.vit.posEmb', 'model.vit.pool',
    'model.vit.dropPath', 'data.shapes.numClasses', 'data.shapes.mean', 'data.imagefolder.numClasses', 'data.imagefolder.std',
    'data.imagenet.numClasses', 'data.imagenet.augment.hflip', 'data.imagenet.mix.prob', 'data.imagenet.threads', 'data.imagenet.valLabels',
    'model.reparam', 'model.norm', 'model.qkv', 'model.initStd', 'model.dropout', 'model.temperatureSchedule', 'data.kind', 'data.root']) {
    assert.ok(keys.has(k), `${k} is a key`);
  }
  for (const old of Object.keys(RENAMED)) {
    assert.ok(![...keys].some((k) => k === old || k.startsWith(old + '.')), `${old} was renamed, yet is still a key`);
  }
});

test('model.family enumerates exactly the family fragments, data.kind a fragment each; every leaf has doc, format and default', () => {
  assert.deepEqual([...schema.model.family.format].sort(), Object.keys(MODEL_FAMILIES).sort());
  for (const family of Object.keys(MODEL_FAMILIES)) assert.ok(family in schema.model, `model.${family}`);
  for (const kind of DATA_KINDS) assert.ok(kind in schema.data && !isLeaf((schema.data as Record<string, unknown>)[kind]), `data.${kind}`);
  const walk = (node: object, path: string): void => {
    for (const [k, v] of Object.entries(node)) {
      if (isLeaf(v)) {
        assert.ok(v.doc.length >= 5, `${path}${k} has a doc`);
        assert.ok(typeof v.format === 'string' || (Array.isArray(v.format) && v.format.length > 0), `${path}${k} has a strict format`);
      } else walk(v as object, `${path}${k}.`);
    }
  };
  walk(schema, '');
  // Keys map to distinct environment variables (model.vit.imageSize and a hypothetical model.vitImage.size would not).
  const names = configKeys().map(envName);
  assert.equal(new Set(names).size, names.length);
});

test('withFamilies refuses a family whose name is a shared key', () => {
  const leaf = { doc: 'a shared key', format: 'string', default: '' } as const;
  assert.throws(() => withFamilies('model', { vit: leaf }, { vit: { x: leaf } }), /model\.vit is both a shared key and a family fragment/);
  assert.deepEqual(Object.keys(withFamilies('model', { norm: leaf }, { vit: { x: leaf } })), ['norm', 'vit']);
});

test('the Config type follows the schema: a misspelled or moved key does not compile', () => {
  const c = loadConfig({ env: {}, args: ['--model.vit.imageSize', '32', '--data.shapes.numClasses', '7'] });
  const size: number = c.model.vit.imageSize;
  const pool: 'cls' | 'gap' = c.model.vit.pool;
  const mean: [number, number, number] = c.data.imagenet.mean;
  assert.equal(size, 32);
  assert.equal(pool, 'cls');
  assert.deepEqual(mean, [0.485, 0.456, 0.406]);
  assert.equal(c.data.shapes.numClasses, 7);
  // Each line below must fail to compile (tsc reports an unused @ts-expect-error otherwise) and is undefined at run time.
  // @ts-expect-error: moved to model.vit.imageSize
  assert.equal(c.model.imageSize, undefined);
  // @ts-expect-error: misspelled
  assert.equal(c.model.vit.imageSzie, undefined);
  // @ts-expect-error: moved to data.<kind>.numClasses
  assert.equal(c.data.numClasses, undefined);
  // @ts-expect-error: not a value of model.vit.pool
  const wrong: typeof c.model.vit.pool = 'mean';
  assert.equal(wrong, 'mean');
});

test('an old flat config fails naming every moved key and its new name, not training a default model', () => {
  const old = join(ROOT, 'test/fixtures/configs/old-flat-demo.yaml');
  const msg = rejection(() => loadConfig({ file: old, env: {} }));
  for (const [from, to] of [['model.variant', 'model.vit.variant'], ['model.imageSize', 'model.vit.imageSize'], ['model.pool', 'model.vit.pool'],
    ['data.numClasses', 'data.shapes.numClasses']]) {
    assert.ok(msg.includes(`${from} was renamed to ${to}`), `${from} → ${to} in: ${msg}`);
  }
  assert.ok(msg.includes(`config file ${old}: model.variant was renamed`), `the file is named: ${msg}`);
  assert.equal(msg.match(/was renamed/g)?.length, 4, 'exactly the four moved keys of the old demo');
  // Moved as the message says, it is the new demo.
  const moved = readFileSync(old, 'utf8')
    .replace('  variant: demo/4', '  vit: { variant: demo/4, imageSize: 16, pool: gap }').replace(/\n {2}imageSize: 16/, '').replace(/\n {2}pool: gap.*/, '')
    .replace(/\n {2}numClasses: 10\n {2}shapes: \{ /, '\n  shapes: { numClasses: 10, ');
  assert.deepEqual(loadConfig({ file: file('moved.yaml', moved), env: {} }), loadConfig({ file: join(ROOT, 'configs/demo.yaml'), env: {} }));
});

test('the new name follows data.kind: imagenet keys, and image keys under the configured kind', () => {
  const f = file('old-imagenet.yaml', 'data:\n  kind: imagenet\n  numClasses: 1000\n  augment: { hflip: 0.3 }\n  threads: 8\n');
  const msg = rejection(() => loadConfig({ file: f, env: {} }));
  assert.match(msg, /data\.numClasses was renamed to data\.imagenet\.numClasses/);
  assert.match(msg, /config file .*old-imagenet\.yaml: .*data\.augment was renamed to data\.imagenet\.augment,/);
  assert.match(msg, /data\.threads was renamed to data\.imagenet\.threads/);
  // The kind from a flag wins over the file's; with no image kind, all three homes are listed.
  assert.match(rejection(() => loadConfig({ env: {}, args: ['--data.kind', 'imagefolder', '--data.mean', '0.5,0.5,0.5'] })),
    /--data\.mean was renamed to --data\.imagefolder\.mean/);
  assert.match(rejection(() => loadConfig({ env: {}, args: ['--data.kind=wmt', '--data.numClasses', '3'] })),
    /--data\.numClasses was renamed to --data\.shapes\.numClasses \/ --data\.imagefolder\.numClasses \/ --data\.imagenet\.numClasses \(by data\.kind\)/);
});

test('old keys as flags, environment variables and overrides fail with their new names', () => {
  assert.match(rejection(() => loadConfig({ env: {}, args: ['--model.variant', 'B/16'] })), /flags: --model\.variant was renamed to --model\.vit\.variant$/);
  assert.match(rejection(() => loadConfig({ env: {}, args: ['--data.augment.hflip=0.2'] })), /--data\.augment\.hflip was renamed to --data\.imagenet\.augment\.hflip/);
  assert.match(rejection(() => loadConfig({ env: { SIGMATRAIN_MODEL_IMAGE_SIZE: '32' } })),
    /environment: SIGMATRAIN_MODEL_IMAGE_SIZE \(model\.imageSize\) was renamed to SIGMATRAIN_MODEL_VIT_IMAGE_SIZE/);
  assert.match(rejection(() => loadConfig({ env: { SIGMATRAIN_DATA_MIX_PROB: '0.5', SIGMATRAIN_DATA_KIND: 'imagenet' } })),
    /SIGMATRAIN_DATA_MIX_PROB \(data\.mix\.prob\) was renamed to SIGMATRAIN_DATA_IMAGENET_MIX_PROB/);
  assert.match(rejection(() => loadConfig({ env: {}, overrides: { model: { pool: 'gap' } } })), /overrides: model\.pool was renamed to model\.vit\.pool$/);
  // The new names load.
  assert.equal(loadConfig({ env: { SIGMATRAIN_MODEL_VIT_IMAGE_SIZE: '32' } }).model.vit.imageSize, 32);
  assert.equal(loadConfig({ env: {}, args: ['--data.imagenet.augment.hflip=0.2'] }).data.imagenet.augment.hflip, 0.2);
});

test('every rename points at keys that exist', () => {
  const keys = configKeys();
  for (const [old, now] of Object.entries(RENAMED)) {
    for (const kind of IMAGE_KINDS) {
      const target = now.replace('<kind>', kind);
      assert.ok(keys.some((k) => k === target || k.startsWith(target + '.')), `${old} → ${target}`);
    }
  }
});

test('activeImageData reads the configured kind, and names data.kind when it is no image kind', () => {
  const inet = loadConfig({ env: {}, args: ['--data.kind', 'imagenet', '--data.imagenet.numClasses', '5', '--data.shapes.numClasses', '9'] });
  assert.deepEqual(activeImageData(inet), { kind: 'imagenet', numClasses: 5, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  assert.equal(activeImageData(loadConfig({ env: {}, args: ['--data.shapes.numClasses', '9'] })).numClasses, 9);
  const wmt = loadConfig({ env: {}, args: ['--data.kind', 'wmt'] });
  assert.throws(() => activeImageData(wmt), /data\.kind is wmt: set data\.kind to one of shapes, imagefolder, imagenet/);
});

test('README names only keys that exist (a renamed key left in the docs fails here)', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const keys = configKeys();
  // Backticked model.* / data.* names, less file names (model.safetensors).
  const named = [...readme.matchAll(/`((?:model|data)\.[A-Za-z0-9.]*[A-Za-z0-9])/g)].map((m) => m[1]).filter((n) => !/\.(safetensors|json|ya?ml)$/.test(n));
  assert.ok(named.length > 20);
  const unknown = named.filter((n) => !keys.some((k) => k === n || k.startsWith(n + '.')));
  assert.deepEqual([...new Set(unknown)], []);
});
