// Codec round trip and the validation errors that name what is wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import { encode, decode, PROTOCOL_VERSION } from '../../../shared/protocol/index.js';

test('every message type round-trips with version and request id', () => {
  const a = decode(encode({ type: 'coord.abort', generation: 3, atStep: null, reason: 'x' }));
  const b = decode(encode({ type: 'coord.abort', generation: 3, atStep: 7, reason: 'y' }));
  assert.ok(a.ok && b.ok);
  if (a.ok && b.ok) {
    assert.equal(a.msg.v, PROTOCOL_VERSION);
    assert.ok(b.msg.id > a.msg.id, 'request ids increase');
    assert.deepEqual({ ...b.msg, id: 0 }, { v: PROTOCOL_VERSION, id: 0, type: 'coord.abort', generation: 3, atStep: 7, reason: 'y' });
  }
});

test('schema violations name the field', () => {
  const d = decode(pack({ v: PROTOCOL_VERSION, id: 9, type: 'coord.start', generation: -1 }));
  assert.ok(!d.ok);
  if (!d.ok) {
    assert.equal(d.id, 9);
    assert.match(d.error, /coord\.start/);
  }
  const e = decode(pack({ v: PROTOCOL_VERSION, id: 1, type: 'worker.heartbeat', workerId: 'a', generation: 1, rank: 0, step: 1.5, ringEndpoint: 'x', worldSize: 1 }));
  assert.ok(!e.ok && /step/.test(e.error));
});

test('worker.alive round-trips; a negative or fractional busyMs is refused, naming the field', () => {
  const a = decode(encode({ type: 'worker.alive', workerId: 'node0-1', busyMs: 12_345 }));
  assert.ok(a.ok && a.msg.type === 'worker.alive' && a.msg.busyMs === 12_345 && a.msg.workerId === 'node0-1');
  for (const busyMs of [-1, 2.5]) {
    const d = decode(pack({ v: PROTOCOL_VERSION, id: 4, type: 'worker.alive', workerId: 'w', busyMs }));
    assert.ok(!d.ok && /busyMs/.test(d.error), JSON.stringify(d));
  }
});

test('protocol v3: a step report carries named metrics, entropy per attention site and the step digest', () => {
  const report = {
    type: 'worker.report' as const, workerId: 'w0', generation: 1, rank: 0, step: 4, epoch: 0, units: 480, unit: 'tokens', samples: 64,
    loss: Number.NaN, metrics: { accuracy: 0.5 }, lr: 1e-3, gradNorm: 1, temperature: 1,
    entropy: [{ attn: 'self' as const, layer: 0, heads: [1.5, 2] }, { attn: 'cross' as const, layer: 0, heads: [0.5, 0.25] }],
    digest: '0123456789abcdef', prevDigest: '0000000000000000', seconds: { data: 0, forward_backward: 0.1, allreduce: 0.01, optimizer: 0.01 },
  };
  const d = decode(encode(report));
  assert.ok(d.ok && d.msg.type === 'worker.report', JSON.stringify(d));
  if (d.ok && d.msg.type === 'worker.report') {
    assert.deepEqual(d.msg.metrics, { accuracy: 0.5 });
    assert.deepEqual(d.msg.entropy, report.entropy);
    assert.equal(d.msg.digest, report.digest);
    assert.ok(Number.isNaN(d.msg.loss), 'a non-finite loss reaches the coordinator');
  }
  const bad = decode(pack({ v: PROTOCOL_VERSION, id: 2, ...report, entropy: [{ attn: 'diagonal', layer: 0, heads: [1] }] }));
  assert.ok(!bad.ok && /entropy/.test(bad.error), JSON.stringify(bad));
  const long = decode(pack({ v: PROTOCOL_VERSION, id: 3, ...report, digest: 'f'.repeat(65) }));
  assert.ok(!long.ok && /digest/.test(long.error));
  const ev = decode(encode({ type: 'worker.eval', workerId: 'w0', generation: 1, step: 5, epoch: 1, metrics: { val_token_acc: 0.99, val_loss: 0.01 }, ema: null, n: 512 }));
  assert.ok(ev.ok && ev.msg.type === 'worker.eval' && ev.msg.metrics.val_token_acc === 0.99);
  const v2 = decode(pack({ v: 2, id: 4, type: 'coord.heartbeat', generation: 0 }));
  assert.ok(!v2.ok, 'a v2 peer is refused');
});
