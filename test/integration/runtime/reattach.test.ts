// A restarted coordinator re-attaches workers from their heartbeats: training workers keep their generation; idle
// ones (their generation was aborted just before the crash) get a new generation from the most advanced state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dealer } from 'zeromq';
import { loadConfig, configHash } from '../../../shared/config/index.js';
import { createLogger } from '../../../shared/log.js';
import { encode, decode, type Message } from '../../../shared/protocol/index.js';
import { Coordinator } from '../../../coordinator/coordinator.js';
import { TINY, tempDir, coordinatorAddress } from '../helpers/job.js';

async function restarted(state: 'idle' | 'training'): Promise<Message[][]> {
  const config = loadConfig({ file: TINY, env: {} });
  const dir = tempDir('reattach');
  // What the crashed coordinator had persisted: generation 1 of a 10-step job.
  writeFileSync(join(dir, 'coordinator.json'), JSON.stringify({ generation: 1, totalSteps: 10, configHash: configHash(config), done: false, temperatureOverride: null, lrScale: 1, rollbacks: 0 }));
  const addr = coordinatorAddress();
  const log = createLogger({ role: 'coordinator', destination: new Writable({ write: (_c, _e, cb) => cb() }), pretty: false });
  const c = new Coordinator(config, { bind: `tcp://${addr}`, runDir: dir, expectWorkers: 2, resume: 'auto' }, log);
  const job = c.run().catch(() => undefined);
  const workers = ['w0', 'w1'].map((id) => {
    const d = new Dealer({ routingId: id, receiveTimeout: 2000 });
    d.connect(`tcp://${addr}`);
    return d;
  });
  const got: Message[][] = [[], []];
  try {
    for (let round = 0; round < 3; round++) {
      await Promise.all(workers.map((d, rank) => d.send(encode({
        type: 'worker.heartbeat', workerId: `w${rank}`, generation: 1, rank, step: 5 + rank, ringEndpoint: `ipc:///tmp/reattach-${rank}`, worldSize: 2, state,
      }))));
      await new Promise((r) => setTimeout(r, 300));
    }
    await Promise.all(workers.map(async (d, rank) => {
      for (;;) {
        try {
          const [frame] = await d.receive();
          const r = decode(frame);
          if (r.ok) got[rank].push(r.msg);
        } catch {
          return; // receive timeout: nothing more
        }
      }
    }));
  } finally {
    c.requestStop('test over');
    for (const d of workers) d.close();
  }
  await job;
  return got;
}

test('idle workers after a coordinator restart: a new generation starts from the most advanced one', { timeout: 60_000 }, async () => {
  const got = await restarted('idle');
  const starts = got.map((msgs) => msgs.find((m) => m.type === 'coord.start'));
  assert.ok(starts.every((s) => s && s.type === 'coord.start' && s.generation === 2), JSON.stringify(starts));
  const s0 = starts[0]!;
  assert.ok(s0.type === 'coord.start' && s0.resumeStep === 6 && s0.source === 1, 'w1 held the most steps (6)');
});

test('training workers after a coordinator restart keep their generation (no new start)', { timeout: 60_000 }, async () => {
  const got = await restarted('training');
  assert.ok(got.every((msgs) => !msgs.some((m) => m.type === 'coord.start')), 'no coord.start sent');
  assert.ok(got.every((msgs) => msgs.some((m) => m.type === 'coord.heartbeat' && m.generation === 1)));
});
