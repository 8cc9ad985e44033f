// Ring collectives across real processes on one machine, on both data planes (net, zmq): world sizes 2 and 3 over
// ipc:// and tcp://127.0.0.1, odd lengths (including length < worldSize and a multi-chunk ~6 MB array), broadcast,
// and a SIGKILLed peer.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DATA_PLANES } from '../../worker/comm/ring.js';
import type { RankCase } from './comm/rank.js';
import { endpoints, launch, verify, type Transport } from './comm/cluster.js';

function casesFor(worldSize: number): RankCase[] {
  return [
    { kind: 'allreduce', length: 1, seed: 11 },
    { kind: 'allreduce', length: worldSize - 1, seed: 12 }, // fewer elements than ranks: some segments empty
    { kind: 'allreduce', length: 0, seed: 13 },
    { kind: 'allreduce', length: 7, seed: 14 },
    { kind: 'allreduce', length: 1001, seed: 15 },
    { kind: 'allreduce', length: 65_537, seed: 16 },
    { kind: 'allreduce', length: 1_500_007, seed: 17 }, // ~6 MB: several 1 MB chunks per segment
    { kind: 'barrier' },
    { kind: 'broadcast', dtype: 'f32', length: 1001, root: worldSize - 1, seed: 21 },
    { kind: 'broadcast', dtype: 'u8', length: 3_000_001, root: 0, seed: 22 }, // multi-chunk, odd byte length
    { kind: 'broadcast', dtype: 'u8', length: 3, root: 1, seed: 23 },
    { kind: 'allreduce', length: 333_333, seed: 18 }, // after broadcasts: sequence numbers stay in step
  ];
}

for (const dataPlane of DATA_PLANES) {
  for (const transport of ['ipc', 'tcp'] as Transport[]) {
    for (const worldSize of [2, 3]) {
      test(`ring all-reduce/broadcast, ${worldSize} processes over ${transport} (${dataPlane} plane)`, async () => {
        const sockDir = mkdtempSync(join(tmpdir(), 'sgt-ring-'));
        const cases = casesFor(worldSize);
        const c = launch({ worldSize, endpoints: await endpoints(transport, worldSize, sockDir), cases, timeoutMs: 10_000, dataPlane });
        try {
          const codes = await c.exited;
          for (let r = 0; r < worldSize; r++) {
            const s = c.summary(r);
            assert.equal(s.ok, true, `rank ${r}: ${JSON.stringify(s.error)}`);
            assert.equal(codes[r], 0, `rank ${r} exit code`);
          }
          assert.deepEqual(verify(c, worldSize, cases), []);
        } finally {
          c.cleanup();
          rmSync(sockDir, { recursive: true, force: true });
        }
      });
    }
  }

  for (const [transport, worldSize] of [['ipc', 3], ['tcp', 2]] as [Transport, number][]) {
    // zmq: the survivors notice only by the timeout; net: the kernel closes the dead process's connections, so its
    // neighbours fail at once ('lost') and the others when those close theirs — all well within the timeout.
    const reason = dataPlane === 'net' ? 'lost' : 'timeout';
    test(`a SIGKILLed peer makes the survivors fail with SGT_COMM ${reason} (${worldSize} ranks, ${transport}, ${dataPlane} plane)`, async (t) => {
      const timeoutMs = 1500;
      const sockDir = mkdtempSync(join(tmpdir(), 'sgt-ring-'));
      const c = launch({
        worldSize,
        endpoints: await endpoints(transport, worldSize, sockDir),
        cases: [],
        timeoutMs,
        loopLength: 1_000_003, // ~4 MB per all-reduce, so the kill lands mid-collective
        hardLimitMs: 20_000,
        dataPlane,
      });
      try {
        // Wait until every rank has completed a few all-reduces, then kill the last rank.
        const t0 = Date.now();
        while (!c.lines.every((l) => l.length >= 3)) {
          assert.ok(Date.now() - t0 < 10_000, `ranks never made progress: ${JSON.stringify(c.lines.map((l) => l.length))}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        const victim = worldSize - 1;
        c.procs[victim].kill('SIGKILL');
        const killedAt = Date.now();
        const codes = await c.exited;
        const took = Date.now() - killedAt;
        assert.equal(codes[victim], null, 'victim was killed');
        for (let r = 0; r < worldSize; r++) {
          if (r === victim) continue;
          assert.equal(codes[r], 3, `survivor ${r} exit code`);
          const s = c.summary(r);
          assert.equal(s.ok, false);
          t.diagnostic(`survivor ${r}: ${s.error?.message}`);
          assert.equal(s.error?.code, 'SGT_COMM');
          assert.equal(s.error?.reason, reason, s.error?.message);
          assert.match(s.error?.message ?? '', new RegExp(`rank ${r} \\(generation 0\\)`));
          assert.ok((s.closeMs ?? Infinity) < 1000, `close() after the error took ${s.closeMs} ms`);
        }
        // zmq: each survivor gives up one timeoutMs after its last progress; allow start-up of the error path and exit.
        // net: the closed connections are seen at once, so all survivors have exited before the timeout could fire.
        if (dataPlane === 'net') assert.ok(took < timeoutMs, `survivors exited ${took} ms after the kill (timeoutMs ${timeoutMs})`);
        else assert.ok(took < timeoutMs + 3000, `survivors exited ${took} ms after the kill (timeoutMs ${timeoutMs})`);
      } finally {
        c.cleanup();
        rmSync(sockDir, { recursive: true, force: true });
      }
    });
  }
}
