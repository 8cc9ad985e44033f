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
