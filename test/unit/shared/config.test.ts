// Config loading: YAML with comments, precedence default < file < env < args, strict errors that name the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, configHash, configKeys, envName } from '../../../shared/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sgt-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('YAML with comments loads; file < env < args', () => {
  const f = file('a.yaml', '# a comment\ntrain:\n  epochs: 3 # trailing\noptim:\n  lr: 0.01\n');
  assert.equal(loadConfig({ file: f, env: {} }).train.epochs, 3);
  assert.equal(loadConfig({ file: f, env: { SIGMATRAIN_TRAIN_EPOCHS: '4' } }).train.epochs, 4);
  assert.equal(loadConfig({ file: f, env: { SIGMATRAIN_TRAIN_EPOCHS: '4' }, args: ['--train.epochs', '5'] }).train.epochs, 5);
  assert.equal(loadConfig({ file: f, env: {}, args: ['--optim.lr=0.5'] }).optim.lr, 0.5);
  assert.equal(loadConfig({ env: { SIGMATRAIN_DATA_ROOT: '/x' } }).data.root, '/x');
});

test('env names derive from keys', () => {
  assert.equal(envName('data.root'), 'SIGMATRAIN_DATA_ROOT');
  assert.equal(envName('model.vit.imageSize'), 'SIGMATRAIN_MODEL_VIT_IMAGE_SIZE');
  assert.ok(configKeys().includes('optim.lr'));
});

const bad: Array<[string, () => unknown, RegExp]> = [
  ['unknown key in file', () => loadConfig({ file: file('b.yaml', 'optim:\n  lrr: 1\n'), env: {} }), /optim\.lrr/],
  ['NaN from args', () => loadConfig({ env: {}, args: ['--optim.lr', 'abc'] }), /optim\.lr.*NaN/],
  ['NaN in overrides', () => loadConfig({ env: {}, overrides: { optim: { lr: NaN } } }), /optim\.lr/],
  ['fraction for an integer', () => loadConfig({ env: {}, args: ['--train.epochs', '2.7'] }), /train\.epochs.*2\.7/],
  ['wrong type', () => loadConfig({ file: file('c.yaml', 'model:\n  vit:\n    imageSize: big\n'), env: {} }), /model\.vit\.imageSize/],
  ['not in enum', () => loadConfig({ env: {}, args: ['--model.norm', 'layer'] }), /model\.norm/],
  ['unknown flag', () => loadConfig({ env: {}, args: ['--train.epoch', '2'] }), /--train\.epoch/],
  ['unknown env', () => loadConfig({ env: { SIGMATRAIN_TRAIN_EPOCH: '2' } }), /SIGMATRAIN_TRAIN_EPOCH/],
  ['missing file', () => loadConfig({ file: join(dir, 'nope.yaml'), env: {} }), /nope\.yaml/],
  ['broken YAML', () => loadConfig({ file: file('d.yaml', 'train: [1,\n'), env: {} }), /d\.yaml/],
  ['probability out of range', () => loadConfig({ env: {}, args: ['--model.dropout', '1.5'] }), /model\.dropout/],
  ['unknown ring data plane', () => loadConfig({ env: {}, args: ['--dist.dataPlane', 'udp'] }), /dist\.dataPlane/],
];
for (const [what, fn, re] of bad) {
  test(`rejected with the key named: ${what}`, () => {
    assert.throws(fn, (e: Error) => {
      assert.match(e.message, /^SGT_CONFIG_(INVALID|FILE)/);
      assert.match(e.message, re);
      return true;
    });
  });
}

test('the result is frozen and the hash follows the content', () => {
  const a = loadConfig({ env: {} });
  assert.throws(() => { (a.optim as { lr: number }).lr = 1; });
  assert.equal(configHash(a), configHash(loadConfig({ env: {} })));
  assert.notEqual(configHash(a), configHash(loadConfig({ env: {}, args: ['--optim.lr', '0.5'] })));
});

test('every config in configs/, configs/experiments/ and the test fixtures loads', () => {
  for (const folder of ['configs/', 'configs/experiments/', 'test/fixtures/configs/']) {
    const root = new URL(`../../../../${folder}`, import.meta.url);
    const files = readdirSync(root).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.startsWith('old-'));
    assert.ok(files.length > 0, folder);
    for (const f of files) loadConfig({ file: new URL(f, root).pathname, env: {} });
  }
});

test('the job hash ignores per-process keys (ring host, ports, data mount, logging) and nothing else', () => {
  const base = configHash(loadConfig({ env: {} }));
  for (const [k, v] of [['dist.ringHost', 'node1'], ['dist.ringPortBase', '30000'], ['data.root', '/mnt/x'], ['metrics.port', '9500'], ['log.level', 'debug'], ['dist.transport', 'tcp']]) {
    assert.equal(configHash(loadConfig({ env: {}, args: [`--${k}`, v] })), base, `${k} changed the hash`);
  }
  for (const [k, v] of [['optim.lr', '0.5'], ['model.vit.variant', 'test/4'], ['train.globalBatch', '32'], ['dist.allreduceTimeoutMs', '999']]) {
    assert.notEqual(configHash(loadConfig({ env: {}, args: [`--${k}`, v] })), base, `${k} did not change the hash`);
  }
});
