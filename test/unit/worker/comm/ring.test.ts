// Ring behaviour with all ranks in one process (real sockets over ipc://, one event loop), for both data planes
// (net: node:net, zmq: ZeroMQ): options, world size 1, stale generations, mismatched collectives, timeouts, close
// during a collective, buffer-reuse safety. Tests that inject foreign frames are per plane (they speak its wire format).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Push } from 'zeromq';
import { CommError } from '../../../../worker/comm/errors.js';
import { encodeHeader } from '../../../../worker/comm/header.js';
import { DATA_PLANES, Ring, type DataPlane, type RingOptions } from '../../../../worker/comm/ring.js';

const dir = mkdtempSync(join(tmpdir(), 'sgt-ring-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let nextId = 0;

/** N rings wired ipc://<dir>/<id>-<r>.sock → successor, on the zmq plane unless `extra.dataPlane` says net; not opened. */
function rings(N: number, extra: Partial<RingOptions> = {}): Ring[] {
  const id = nextId++;
  const ep = (r: number) => `ipc://${join(dir, `${id}-${r}.sock`)}`;
  return Array.from(
    { length: N },
    (_, r) => new Ring({ rank: r, worldSize: N, listen: ep(r), next: ep((r + 1) % N), prev: ep((r + N - 1) % N), timeoutMs: 5000, dataPlane: 'zmq', ...extra }),
  );
}

const openAll = (rs: Ring[]) => Promise.all(rs.map((r) => r.open()));
const closeAll = (rs: Ring[]) => Promise.all(rs.map((r) => r.close()));

test('invalid options are CommError usage errors naming the value', () => {
  const base = { rank: 0, worldSize: 2, listen: 'ipc:///tmp/a', next: 'ipc:///tmp/b' };
  assert.throws(() => new Ring({ ...base, rank: 2 }), (e: unknown) => e instanceof CommError && e.reason === 'usage' && /rank=2/.test(e.message));
  assert.throws(() => new Ring({ ...base, worldSize: 0 }), /worldSize=0/);
  assert.throws(() => new Ring({ ...base, chunkBytes: 6 }), /chunkBytes=6/);
  assert.throws(() => new Ring({ ...base, timeoutMs: 0 }), /timeoutMs=0/);
  assert.throws(() => new Ring({ ...base, next: '' }), /next=""/);
});

test('world size 1: every collective is a no-op, no sockets', async () => {
  const r = new Ring({ rank: 0, worldSize: 1, listen: '', next: '' });
  await r.open();
  const a = Float32Array.of(1, 2, 3);
  await r.allReduceSum(a);
  await r.broadcast(a, 0);
  await r.barrier();
  assert.deepEqual([...a], [1, 2, 3]);
  await r.close();
  await assert.rejects(r.barrier(), /state 'closed'/);
});

test('collectives before open() are refused', async () => {
  const [r] = rings(2);
  await assert.rejects(r.allReduceSum(new Float32Array(4)), (e: unknown) => e instanceof CommError && e.reason === 'usage');
});

test('frames of another generation are dropped; the collective still completes (zmq)', async () => {
  const rs = rings(2, { generation: 7 });
  await openAll(rs);
  // A leftover sender of generation 6 pushes into rank 1's PULL in the middle of things.
  const rogue = new Push({ linger: 0 });
  rogue.connect((rs[1] as unknown as { opts: RingOptions }).opts.listen);
  const stale = encodeHeader({ gen: 6, op: 'allreduce', seq: 1, step: 0, chunk: 0, from: 0, len: 3 });
  await rogue.send([stale, new Float32Array([100, 100, 100])]);
  await new Promise((r) => setTimeout(r, 50));
  const a = [Float32Array.of(1, 2, 3), Float32Array.of(10, 20, 30)];
  await Promise.all(rs.map((r, i) => r.allReduceSum(a[i])));
  assert.deepEqual([...a[0]], [11, 22, 33]);
  assert.deepEqual([...a[1]], [11, 22, 33]);
  assert.equal(rs[1].stats.staleDropped, 1);
  rogue.close();
  await closeAll(rs);
});

test('a stream of stale-generation frames does not postpone the timeout (zmq)', async () => {
  const [r0] = rings(2, { timeoutMs: 300, generation: 2 });
  const rogue = new Push({ linger: 0 });
  rogue.connect((r0 as unknown as { opts: RingOptions }).opts.listen);
  const stale = encodeHeader({ gen: 1, op: 'hello', seq: 0, step: 0, chunk: 0, from: 1, len: 0 });
  const timer = setInterval(() => void rogue.send(stale).catch(() => undefined), 50);
  const t0 = Date.now();
  try {
    await assert.rejects(r0.open(), (e: unknown) => e instanceof CommError && e.reason === 'timeout');
    assert.ok(Date.now() - t0 < 1500, `gave up after ${Date.now() - t0} ms`);
    assert.ok(r0.stats.staleDropped >= 3);
  } finally {
    clearInterval(timer);
    rogue.close();
    await r0.close();
  }
});

for (const plane of DATA_PLANES) {
  test(`ranks calling different collectives fail with a protocol error, and the ring stays failed (${plane})`, async () => {
    const rs = rings(2, { dataPlane: plane });
    await openAll(rs);
    const [e0, e1] = await Promise.allSettled([rs[0].allReduceSum(new Float32Array(8)), rs[1].barrier()]);
    for (const e of [e0, e1]) {
      assert.equal(e.status, 'rejected');
      const err = (e as PromiseRejectedResult).reason as CommError;
      assert.equal(err.code, 'SGT_COMM');
      assert.equal(err.reason, 'protocol');
      assert.match(err.message, /same collectives in the same order/);
    }
    await assert.rejects(rs[0].barrier(), (e: unknown) => e === (e0 as PromiseRejectedResult).reason);
    await closeAll(rs);
  });

  test(`unequal lengths are a protocol error naming both lengths (${plane})`, async () => {
    const rs = rings(2, { dataPlane: plane });
    await openAll(rs);
    const res = await Promise.allSettled([rs[0].allReduceSum(new Float32Array(10)), rs[1].allReduceSum(new Float32Array(11))]);
    assert.ok(res.every((x) => x.status === 'rejected'));
    assert.match(((res[0] as PromiseRejectedResult).reason as Error).message, /len 10 .*got allreduce #1 step 0 chunk 0 len 11/);
    await closeAll(rs);
  });

  test(`a silent peer: open() fails after timeoutMs with a timeout naming rank, generation and peer; close() is immediate (${plane})`, async () => {
    const [r0] = rings(2, { dataPlane: plane, timeoutMs: 300, generation: 4 });
    const t0 = Date.now();
    await assert.rejects(r0.open(), (e: unknown) => {
      assert.ok(e instanceof CommError);
      assert.equal(e.reason, 'timeout');
      assert.equal(e.details.rank, 0);
      assert.equal(e.details.generation, 4);
      assert.equal(e.details.peer, 1);
      assert.match(e.message, /^SGT_COMM: rank 0 \(generation 4\): hello #0 step 0 chunk 0: timed out after 300 ms/);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000);
    const t1 = Date.now();
    await r0.close();
    assert.ok(Date.now() - t1 < 500, `close took ${Date.now() - t1} ms`);
  });

  test(`close() is idempotent and wrong argument types are usage errors (${plane})`, async () => {
    const rs = rings(2, { dataPlane: plane });
    await openAll(rs);
    await assert.rejects(rs[0].allReduceSum(new Float64Array(3) as unknown as Float32Array), /needs a Float32Array, got Float64Array/);
    await assert.rejects(rs[0].broadcast([1, 2] as unknown as Uint8Array, 0), /got Array/);
    const closes = rs.flatMap((r) => [r.close(), r.close()]);
    assert.equal(closes[0], closes[1]);
    await Promise.all(closes);
  });

  test(`close() during a collective aborts it at once with reason closed (${plane})`, async () => {
    const rs = rings(2, { dataPlane: plane, timeoutMs: 10_000 });
    await openAll(rs);
    const pending = rs[0].allReduceSum(new Float32Array(1000)); // rank 1 never joins
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await rs[0].close();
    await assert.rejects(pending, (e: unknown) => e instanceof CommError && e.reason === 'closed');
    assert.ok(Date.now() - t0 < 1000);
    await rs[1].close();
  });

  test(`a rank may overwrite its array as soon as its collective resolves (no zero-copy send still reads it) (${plane})`, async () => {
    // Regression test for reuse-before-sent: rank 0's all-reduce usually resolves before rank 1 has everything.
    for (const N of [2, 3]) {
      const rs = rings(N, { dataPlane: plane, chunkBytes: 64 * 1024 });
      await openAll(rs);
      const L = 700_001;
      for (let round = 0; round < 3; round++) {
        const a = rs.map((_, r) => new Float32Array(L).fill(r + 1 + round));
        const results = await Promise.all(
          rs.map(async (ring, r) => {
            await ring.allReduceSum(a[r]);
            const copy = a[r].slice();
            a[r].fill(NaN); // the caller's next step reuses the buffer immediately
            return copy;
          }),
        );
        const want = Array.from({ length: N }, (_, r) => r + 1 + round).reduce((s, v) => s + v, 0);
        results.forEach((c, r) => assert.ok(c.every((v) => v === want), `N=${N} round ${round} rank ${r}`));
      }
      // Broadcast: the root returns only after the last rank acknowledged.
      const b = rs.map((_, r) => new Uint8Array(300_001).fill(r === 1 ? 9 : 0));
      const got = await Promise.all(
        rs.map(async (ring, r) => {
          await ring.broadcast(b[r], 1);
          const copy = b[r].slice();
          b[r].fill(255);
          return copy;
        }),
      );
      got.forEach((c, r) => assert.ok(c.every((v) => v === 9), `broadcast N=${N} rank ${r}`));
      await closeAll(rs);
    }
  });

  test(`stats count payload bytes and collectives (${plane})`, async () => {
    const rs = rings(3, { dataPlane: plane });
    await openAll(rs);
    await Promise.all(rs.map((r) => r.allReduceSum(new Float32Array(3000))));
    const s = rs[0].stats;
    // Each rank sends 2(N-1) segments of L/N floats: 4 × 1000 × 4 bytes.
    assert.equal(s.bytesSent, 16_000);
    assert.equal(s.bytesReceived, 16_000);
    assert.equal(s.collectives, 2); // hello + allreduce
    await closeAll(rs);
  });
}
