// Atomicity with real processes: a child writes multi-MB checkpoints in a loop and is SIGKILLed at random moments;
// every listed checkpoint must then read back whole (sha256, tensors consistent with its state), none half-written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listCheckpoints, latestCheckpoint, readCheckpoint } from '../../../shared/checkpoint/store.js';

const storeUrl = new URL('../../../shared/checkpoint/store.js', import.meta.url).href;
const KEEP = 3;
const N = 750_000; // floats per tensor: 3 MB each, ~6 MB per checkpoint

/**
 * The child: from step `start` on, writes checkpoint (step, version 0), and every third step rewrites it as version 1
 * (exercising same-step replacement); prints "start s v" before and "done s v" after each write.
 */
const child = `
import { writeCheckpoint } from ${JSON.stringify(storeUrl)};
const [dir, start, n, keep] = process.argv.slice(1);
for (let step = Number(start); ; step++) {
  for (const version of step % 3 === 0 ? [0, 1] : [0]) {
    const w = new Float32Array(Number(n)).map((_, i) => step * 2 + version + (i % 97));
    const data = {
      model: new Map([['w', { shape: [Number(n)], data: w }], ['gamma', { shape: [], data: Float32Array.of(step) }]]),
      optimizer: new Map([['m/w', { shape: [Number(n)], data: w.map((x) => -x) }]]),
      state: { step, version, rng: { seed: 1, step } },
    };
    process.stdout.write('start ' + step + ' ' + version + '\\n');
    await writeCheckpoint(dir, data, { keep: Number(keep) });
    process.stdout.write('done ' + step + ' ' + version + '\\n');
  }
}
`;

interface Round {
  started: number[];
  done: number[];
}

/** Runs the child from `start`, SIGKILLs it `killAfterMs` after its first write started, and reports what it said. */
function runAndKill(dir: string, start: number, killAfterMs: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', child, dir, String(start), String(N), String(KEEP)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const round: Round = { started: [], done: [] };
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        const [what, step] = line.split(' ');
        (what === 'start' ? round.started : round.done).push(Number(step));
        timer ??= setTimeout(() => p.kill('SIGKILL'), killAfterMs);
      }
    });
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}/${signal} before the kill: ${err}`));
      else resolve(round);
    });
  });
}

test('SIGKILL at random moments never leaves a half-written checkpoint listed', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sgt-ckpt-crash-'));
  let next = 0;
  let lastDone = -1;
  let sawLeftover = false;
  const rounds = Number(process.env.SGT_CKPT_CRASH_ROUNDS ?? 6); // raise it to stress-test
  for (let r = 0; r < rounds; r++) {
    const killAfter = Math.floor(Math.random() * 400);
    const round = await runAndKill(dir, next, killAfter);
    const maxStarted = Math.max(-1, ...round.started);
    if (round.done.length > 0) lastDone = Math.max(lastDone, ...round.done);
    sawLeftover ||= readdirSync(dir).some((n) => n.startsWith('.'));

    const listed = await listCheckpoints(dir);
    const steps = listed.map((c) => c.step);
    assert.ok(listed.length <= KEEP + 1, `round ${r}: at most keep+1 (a kill between rename and prune) listed: ${steps}`);
    for (const c of listed) {
      assert.ok(!c.path.includes('.tmp-ckpt-'), `round ${r}: a temp dir was listed: ${c.path}`);
      const got = await readCheckpoint(c.path); // verifies both sha256s
      const step = got.state.step;
      const version = got.state.version as number;
      assert.equal(step, c.step);
      const w = got.model.get('w')!.data;
      const m = got.optimizer.get('m/w')!.data;
      assert.equal(w.length, N);
      for (let i = 0; i < N; i += 4999) {
        assert.equal(w[i], step * 2 + version + (i % 97), `round ${r} step ${step}: model w[${i}] belongs to this state`);
        assert.equal(m[i], -w[i], `round ${r} step ${step}: optimizer matches model`);
      }
      assert.equal(got.model.get('gamma')!.data[0], step);
    }
    // The newest listed checkpoint is the highest step whose write finished (or the one in flight if its rename
    // landed just before the kill, before "done" was printed). Nothing newer than what was started.
    const latest = steps.at(-1) ?? -1;
    assert.ok(latest >= lastDone, `round ${r}: latest ${latest} ≥ last finished ${lastDone}`);
    assert.ok(latest <= Math.max(maxStarted, lastDone), `round ${r}: latest ${latest} ≤ last started ${maxStarted}`);
    assert.equal(await latestCheckpoint(dir), listed.at(-1)?.path);
    lastDone = latest;
    next = latest + 1; // resume like a trainer would
  }
  assert.ok(lastDone >= 1, 'the child made progress across rounds');
  // Kills land mid-write most of the time, so a leftover temp dir is normally seen at least once (not asserted: timing).
  if (!sawLeftover) console.log('note: no temp leftover was observed in this run');
});
