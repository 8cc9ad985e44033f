// The named TrainState: a rank-0 broadcast buffer restores another replica bitwise (parameters, u/v, optimizer and
// EMA slots, step, digest), and a replica with another layout refuses the buffer before applying anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../../worker/backend.js';
import { loadConfig } from '../../../../shared/config/index.js';
import { ClassifyTask } from '../../../../worker/tasks/classify.js';
import { Trainer } from '../../../../worker/train/trainer.js';
import { LocalCollective } from '../../../../worker/comm/collective.js';
import { fromNamed, packState, stateLayout, toNamed, unpackState } from '../../../../worker/train/snapshot.js';
import { digestFromFloats, digestToFloats } from '../../../../worker/train/digest.js';
import { Rng } from '../../../../worker/rng.js';

const cfg = (model: Record<string, unknown> = {}) =>
  loadConfig({ env: {}, overrides: { model: { vit: { variant: 'test/4', imageSize: 8 }, ...model }, data: { shapes: { numClasses: 3 } }, optim: { emaDecay: 0.9 } } });

const bytes = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

test('broadcast buffer round trip: the receiver holds the sender\'s state bitwise and trains on identically', async () => {
  await initBackend('cpu');
  const config = cfg();
  const rng = new Rng(3);
  const batch = { x: Float32Array.from({ length: 4 * 192 }, () => rng.normal32()), y: Int32Array.of(0, 1, 2, 1), samples: 4, units: 4, skipped: [] };
  const a = new Trainer(config, new ClassifyTask(config));
  for (let i = 0; i < 2; i++) await a.trainStep(batch, new LocalCollective());
  const b = new Trainer(config, new ClassifyTask(config));
  const layout = stateLayout(a);
  assert.equal(stateLayout(b).hash, layout.hash);
  const buf = packState(await toNamed(a), layout);
  fromNamed(b, unpackState(buf, stateLayout(b), true));
  assert.equal(b.step, 2);
  assert.equal(b.digest, a.digest);
  const [na, nb] = [await toNamed(a), await toNamed(b)];
  for (const group of ['model', 'slots'] as const) {
    assert.deepEqual([...nb[group].keys()], [...na[group].keys()]);
    for (const [k, v] of na[group]) assert.ok(bytes(v).equals(bytes(nb[group].get(k)!)), `${group} ${k}`);
  }
  const [ra, rb] = [await a.trainStep(batch, new LocalCollective()), await b.trainStep(batch, new LocalCollective())];
  assert.equal(rb.loss, ra.loss);
  assert.equal(rb.digest, ra.digest);
  a.dispose();
  b.dispose();
});

test('a replica with another layout refuses the buffer, naming both layouts', async () => {
  await initBackend('cpu');
  const a = new Trainer(cfg(), new ClassifyTask(cfg()));
  const other = new Trainer(cfg({ qkv: 'separate' }), new ClassifyTask(cfg({ qkv: 'separate' })));
  const buf = packState(await toNamed(a), stateLayout(a));
  const theirs = stateLayout(other);
  assert.notEqual(theirs.hash, stateLayout(a).hash);
  assert.throws(() => unpackState(buf, theirs, true), /SGT_STATE_LAYOUT: the broadcast state has layout [0-9a-f]{16} .* expects [0-9a-f]{16}/);
  a.dispose();
  other.dispose();
});

test('a digest survives the float32 broadcast encoding', () => {
  for (const d of ['0000000000000000', 'ffffffffffffffff', '0123456789abcdef']) assert.equal(digestFromFloats(Float32Array.from(digestToFloats(d))), d);
});
