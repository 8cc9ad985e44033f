// The ring across network namespaces: 3 ranks, each in its own namespace with its own 10.x address on a private
// bridge, talking tcp:// as across machines, on both data planes. Skipped (with the reason) where `ip netns add` is not allowed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DATA_PLANES } from '../../worker/comm/ring.js';
import type { RankCase } from './comm/rank.js';
import { launch, verify } from './comm/cluster.js';
import { createLab, netnsUnavailable, txBytes } from './comm/netns.js';

for (const dataPlane of DATA_PLANES) {
  test(`ring all-reduce across 3 network namespaces over tcp (${dataPlane} plane)`, async (t) => {
    const why = netnsUnavailable();
    if (why) {
      t.skip(why);
      return;
    }
    const worldSize = 3;
    const lab = createLab(worldSize);
    try {
      const cases: RankCase[] = [
        { kind: 'allreduce', length: 2, seed: 31 },
        { kind: 'allreduce', length: 1001, seed: 32 },
        { kind: 'allreduce', length: 1_500_007, seed: 33 },
        { kind: 'broadcast', dtype: 'u8', length: 2_000_003, root: 2, seed: 34 },
        { kind: 'allreduce', length: 77_777, seed: 35 },
      ];
      const c = launch({
        worldSize,
        endpoints: lab.addrs.map((a) => `tcp://${a}:7100`),
        cases,
        timeoutMs: 10_000,
        prefix: (r) => ['ip', 'netns', 'exec', lab.names[r]],
        dataPlane,
      });
      try {
        const codes = await c.exited;
        for (let r = 0; r < worldSize; r++) {
          const s = c.summary(r);
          assert.equal(s.ok, true, `rank ${r} in ${lab.names[r]}: ${JSON.stringify(s.error)}`);
          assert.equal(codes[r], 0);
        }
        assert.deepEqual(verify(c, worldSize, cases), []);
        // Each rank sent ≥ 2(N-1)/N of the 6 MB all-reduce through its own veth.
        lab.names.forEach((ns) => assert.ok(txBytes(ns) > 4_000_000, `${ns} eth0 sent only ${txBytes(ns)} bytes`));
      } finally {
        c.cleanup();
      }
    } finally {
      lab.destroy();
    }
  });
}
