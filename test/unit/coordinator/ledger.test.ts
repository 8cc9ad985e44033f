// The ledger: every step once, and (with the replicas' chained state digests) no step applied twice — a report whose
// digest differs from the one recorded for its step stops the job with SGT_STEP_DIGEST (issue 11 item 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger, type StepReport } from '../../../coordinator/ledger.js';
import { SigmaError } from '../../../shared/errors.js';

const path = () => join(mkdtempSync(join(tmpdir(), 'sgt-ledger-')), 'ledger.jsonl');
const lines = (p: string) => readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { step: number; digest?: string });

/** A stand-in replica: its state is one number, a step adds the step's update, the digest chains the state. */
class Replica {
  x = 0;
  digest = '';
  apply(step: number): string {
    this.x += 1 / (step + 1);
    this.digest = createHash('sha256').update(`${this.digest}|${step}|${this.x}`).digest('hex');
    return this.digest;
  }
}

const report = (step: number, rank: number, generation: number, digest?: string): StepReport =>
  ({ step, epoch: 0, generation, worldSize: 2, samples: 8, loss: 2.3 - step / 100, rank, ...(digest ? { digest } : {}) });

test('each step is written once; every rank reporting the same digest is accepted', () => {
  const p = path();
  const l = new Ledger(p);
  const [a, b] = [new Replica(), new Replica()];
  const digests: string[] = [];
  for (let s = 0; s < 5; s++) {
    digests.push(a.apply(s));
    assert.equal(l.record(report(s, 0, 1, digests[s])), true);
    assert.equal(l.record(report(s, 1, 1, b.apply(s))), false);
    assert.equal(l.applications(s), 1);
  }
  assert.deepEqual(lines(p).map((e) => e.step), [0, 1, 2, 3, 4]);
  assert.deepEqual(lines(p).map((e) => e.digest), digests, 'each line keeps its step\'s digest');
  assert.equal(l.next, 5);
});

test('a step applied twice on one replica is refused, naming the step, both ranks and both digests', () => {
  const l = new Ledger(path());
  const [a, b] = [new Replica(), new Replica()];
  for (let s = 0; s < 3; s++) {
    l.record(report(s, 0, 1, a.apply(s)));
    l.record(report(s, 1, 1, b.apply(s)));
  }
  // Rank 1 re-runs step 2 on top of its own step 2 (a replayed step): its digest for step 2 is another one.
  const first = a.digest;
  const twice = b.apply(2);
  assert.throws(() => l.record(report(2, 1, 2, twice)), (e: unknown) => {
    assert.ok(e instanceof SigmaError);
    assert.equal(e.code, 'SGT_STEP_DIGEST');
    assert.match(e.message, /^SGT_STEP_DIGEST: step 2 was reported with two state digests/);
    assert.ok(e.message.includes(`rank 0 (generation 1) ${first}`), e.message);
    assert.ok(e.message.includes(`rank 1 (generation 2) ${twice}`), e.message);
    return true;
  });
});

test('the digests survive a coordinator restart: a reloaded ledger still refuses a mismatch', () => {
  const p = path();
  const a = new Replica();
  const l1 = new Ledger(p);
  for (let s = 0; s < 4; s++) l1.record(report(s, 0, 1, a.apply(s)));
  const l2 = new Ledger(p);
  assert.equal(l2.next, 4);
  assert.equal(l2.record(report(3, 1, 1, a.digest)), false); // the same state: a re-sent report
  assert.throws(() => l2.record(report(3, 1, 1, 'f'.repeat(64))), /SGT_STEP_DIGEST: step 3/);
});

test('applications count the generations that ran a step; reports without a digest (protocol v2) are never refused', () => {
  const l = new Ledger(path());
  l.record(report(0, 0, 1, 'aa'));
  l.record(report(0, 0, 1, 'aa')); // re-sent in the same generation
  assert.equal(l.applications(0), 1);
  l.record(report(0, 1, 2, 'aa')); // recomputed in generation 2 from the same state
  assert.equal(l.applications(0), 2);
  assert.equal(l.applications(7), 0);
  l.record(report(1, 0, 2));
  assert.equal(l.record(report(1, 1, 2)), false);
  assert.equal(l.record(report(1, 1, 2, 'bb')), false, 'a digest after a digest-less first report is adopted');
  assert.throws(() => l.record(report(1, 0, 2, 'cc')), /SGT_STEP_DIGEST: step 1/);
});

test('a rollback truncates steps, their digests and their counts: the re-run records afresh', () => {
  const p = path();
  const l = new Ledger(p);
  for (let s = 0; s < 6; s++) l.record(report(s, 0, 1, `d${s}`));
  l.truncate(3);
  assert.equal(l.next, 3);
  assert.equal(l.applications(4), 0);
  assert.equal(l.record(report(4, 0, 2, 'other')), true, 'a rolled-back step has no recorded digest');
  assert.deepEqual(lines(p).map((e) => e.step), [0, 1, 2, 4]);
});

/** Reports carrying the link to the state they started from (protocol v3's prevDigest). */
const linked = (step: number, rank: number, generation: number, prevDigest: string, digest: string): StepReport =>
  ({ ...report(step, rank, generation, digest), prevDigest });

test('a re-run of a step from the recorded predecessor in a later generation replaces the abandoned lineage', () => {
  const p = path();
  const l = new Ledger(p);
  const a = new Replica();
  const d: string[] = [];
  for (let s = 0; s < 4; s++) {
    const prev = a.digest;
    d.push(a.apply(s));
    l.record(linked(s, 0, 1, prev, d[s]));
  }
  // Generation 1 lost a rank after step 3 was reported; generation 2 (one rank fewer) re-runs step 3 from the state
  // after step 2 and gets another reduced gradient, so another digest: accepted, and step 3's record is the new one.
  const b = new Replica();
  for (let s = 0; s < 3; s++) b.apply(s);
  b.x += 0.5; // another world size, another update
  const rerun = b.apply(3);
  assert.equal(l.record(linked(3, 0, 2, d[2], rerun)), false);
  assert.deepEqual(lines(p).map((e) => e.digest), [...d.slice(0, 3), rerun]);
  assert.equal(l.record(linked(4, 0, 2, rerun, b.apply(4))), true, 'the chain continues from the re-run');
});

test('a step started from any state but the recorded one is refused: applied twice, or a step lost', () => {
  const l = new Ledger(path());
  const a = new Replica();
  const d: string[] = [];
  for (let s = 0; s < 3; s++) {
    const prev = a.digest;
    d.push(a.apply(s));
    l.record(linked(s, 0, 1, prev, d[s]));
  }
  // A replica that already applied step 2 runs "step 3" on top of it twice over: it starts step 3 from the state after
  // its own second application of step 2, not from d[2].
  const twice = createHash('sha256').update(`${d[2]}|again`).digest('hex');
  assert.throws(() => l.record(linked(3, 1, 2, twice, 'x')), (e: unknown) => {
    assert.ok(e instanceof SigmaError && e.code === 'SGT_STEP_DIGEST');
    assert.ok(e.message.includes(`ran step 3 from state digest ${twice}`) && e.message.includes(`step 2 is ${d[2]}`), e.message);
    return true;
  });
  // A re-run of step 2 in the same generation with another digest is no failure recovery: refused.
  assert.throws(() => l.record(linked(2, 1, 1, d[1], 'other')), /SGT_STEP_DIGEST: step 2 was reported with two state digests/);
});
