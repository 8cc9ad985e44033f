// The membership machine without sockets (issue 10 item 9): events in, messages and effects out. Routes are the worker
// ids themselves, so every expectation names who gets what.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Membership, type Effect, type MembershipOptions, type Outcome } from '../../../coordinator/membership.js';
import type { JobState } from '../../../coordinator/jobstate.js';
import { PROTOCOL_VERSION, type MessageOf, type Outgoing } from '../../../shared/protocol/index.js';
import { SigmaError } from '../../../shared/errors.js';

const HASH = 'cafe01';
const opts = (o: Partial<MembershipOptions> = {}): MembershipOptions => ({
  expectWorkers: 2, minWorkers: 1, maxWorkers: 0, joinWaitMs: 5000, heartbeatTimeoutMs: 3000, allreduceTimeoutMs: 10_000,
  globalBatch: 64, maxRollbacks: 2, lrFactor: 0.5, resume: 'never', runDir: '/runs/x', configHash: HASH, ...o,
});

let nextId = 1;
const env = () => ({ v: PROTOCOL_VERSION as typeof PROTOCOL_VERSION, id: nextId++ });
const hello = (workerId: string, held: { generation: number; step: number } | null = null, configHash = HASH): MessageOf<'worker.hello'> =>
  ({ ...env(), type: 'worker.hello', workerId, configHash, host: 'h', pid: 1, ringEndpoint: `ipc:///tmp/${workerId}`, totalSteps: 100, held: held && { ...held, rank: 0 } });
const stopped = (workerId: string, generation: number, held: number, fatal = false, reason = 'aborted'): MessageOf<'worker.stopped'> =>
  ({ ...env(), type: 'worker.stopped', workerId, generation, held, reason, fatal });
const done = (workerId: string, generation: number, held: number): MessageOf<'worker.done'> => ({ ...env(), type: 'worker.done', workerId, generation, held });
const beat = (workerId: string, o: { generation: number; rank: number; step: number; worldSize: number; state: 'training' | 'idle' | 'done' }): MessageOf<'worker.heartbeat'> =>
  ({ ...env(), type: 'worker.heartbeat', workerId, ringEndpoint: `ipc:///tmp/${workerId}`, ...o });

/** The messages of one type in an outcome, as [to, message]. */
function sent<T extends Outgoing['type']>(out: Outcome<string>, type: T): [string, Extract<Outgoing, { type: T }>][] {
  return out.send.filter((s) => s.msg.type === type).map((s) => [s.to, s.msg as Extract<Outgoing, { type: T }>]);
}
const effects = <K extends Effect['kind']>(out: Outcome<string>, kind: K) => out.effects.filter((e): e is Extract<Effect, { kind: K }> => e.kind === kind);

/** A machine whose first generation is formed by workers `ids` (expectWorkers = ids.length) at time 0. */
function formed(ids: string[], o: Partial<MembershipOptions> = {}) {
  const m = new Membership<string>(opts({ expectWorkers: ids.length, ...o }));
  let last: Outcome<string> = { send: [], effects: [] };
  for (const id of ids) last = m.handle({ kind: 'hello', now: 0, from: id, msg: hello(id) });
  return { m, last };
}

/** Every member of generation `g` reports steps from..to (inclusive) at time `now`. */
function steps(m: Membership<string>, g: number, from: number, to: number, now: number): void {
  for (let s = from; s <= to; s++) for (const id of m.ranks()) m.handle({ kind: 'report', now, workerId: id, generation: g, step: s });
}

test('joins: generation 1 forms when the expected workers are in, ranks by worker id, from a fresh init', () => {
  const m = new Membership<string>(opts({ expectWorkers: 2 }));
  const first = m.handle({ kind: 'hello', now: 0, from: 'w-b', msg: hello('w-b') });
  assert.deepEqual(first.send, [], 'one of two: nobody starts yet');
  assert.equal(m.phase, 'gathering');
  const out = m.handle({ kind: 'hello', now: 10, from: 'w-a', msg: hello('w-a') });
  const starts = sent(out, 'coord.start');
  assert.deepEqual(starts.map(([to, s]) => [to, s.rank, s.worldSize, s.generation]), [['w-a', 0, 2, 1], ['w-b', 1, 2, 1]]);
  assert.deepEqual(starts[0][1].peers, ['ipc:///tmp/w-a', 'ipc:///tmp/w-b']);
  assert.equal(starts[0][1].source, -1);
  assert.equal(starts[0][1].resumeStep, 0);
  assert.equal(starts[0][1].resume, false, 'a fresh job with --resume never: the run dir must hold no checkpoint');
  assert.equal(starts[0][1].totalSteps, 100);
  assert.deepEqual(effects(out, 'persist').map((e) => e.state.generation), [1]);
  assert.deepEqual(effects(out, 'generation'), [{ kind: 'generation', generation: 1, worldSize: 2 }]);
  assert.equal(m.phase, 'running');
});

test('joins: fewer than expected form after joinWaitMs once dist.minWorkers are in; a worker with another config is refused', () => {
  const m = new Membership<string>(opts({ expectWorkers: 3, minWorkers: 2, joinWaitMs: 1000 }));
  const refused = m.handle({ kind: 'hello', now: 0, from: 'w-x', msg: hello('w-x', null, 'other') });
  const [[to, err]] = sent(refused, 'error');
  assert.equal(to, 'w-x');
  assert.equal(err.code, 'SGT_CONFIG_MISMATCH');
  assert.equal(err.fatal, true);
  assert.equal(m.has('w-x'), false);
  m.handle({ kind: 'hello', now: 0, from: 'w-a', msg: hello('w-a') });
  assert.deepEqual(sent(m.handle({ kind: 'tick', now: 2000 }), 'coord.start'), [], 'one worker is below minWorkers');
  const m2 = new Membership<string>(opts({ expectWorkers: 3, minWorkers: 2, joinWaitMs: 1000 }));
  m2.handle({ kind: 'hello', now: 0, from: 'w-a', msg: hello('w-a') });
  m2.handle({ kind: 'hello', now: 500, from: 'w-b', msg: hello('w-b') });
  assert.equal(m2.phase, 'gathering');
  assert.deepEqual(sent(m2.handle({ kind: 'tick', now: 999 }), 'coord.start'), [], 'joinWaitMs counts from the first join (t = 0)');
  const out = m2.handle({ kind: 'tick', now: 1000 });
  assert.deepEqual(sent(out, 'coord.start').map(([to, s]) => [to, s.worldSize]), [['w-a', 2], ['w-b', 2]]);
  assert.deepEqual(sent(out, 'coord.heartbeat').map(([to]) => to), ['w-a', 'w-b']);
});

test('a loss re-forms a smaller generation from the survivors\' most advanced state', () => {
  const { m } = formed(['w-a', 'w-b', 'w-c']);
  steps(m, 1, 0, 9, 1000);
  for (const id of ['w-a', 'w-b']) m.handle({ kind: 'seen', now: 4500, workerId: id });
  const lost = m.handle({ kind: 'tick', now: 4500 }); // w-c silent since t = 1000 > 3000 ms
  assert.equal(m.has('w-c'), false);
  assert.equal(effects(lost, 'worker-failed').length, 1);
  assert.equal(m.workerFailures, 1);
  const aborts = sent(lost, 'coord.abort');
  assert.deepEqual(aborts.map(([to, a]) => [to, a.generation, a.atStep]), [['w-a', 1, null], ['w-b', 1, null]], 'survivors stop at once');
  assert.deepEqual(effects(lost, 'event').map((e) => e.event.kind), ['failure']);
  assert.equal(m.phase, 'reforming');
  // The survivors report what they hold; w-b got one step further than w-a.
  assert.deepEqual(m.handle({ kind: 'stopped', now: 4600, msg: stopped('w-a', 1, 9) }).send, []);
  const out = m.handle({ kind: 'stopped', now: 4700, msg: stopped('w-b', 1, 10) });
  const starts = sent(out, 'coord.start');
  assert.deepEqual(starts.map(([to, s]) => [to, s.generation, s.rank, s.worldSize]), [['w-a', 2, 0, 2], ['w-b', 2, 1, 2]]);
  assert.equal(starts[0][1].source, 1, 'w-b (rank 1) holds the most steps');
  assert.equal(starts[0][1].resumeStep, 10);
  assert.equal(starts[0][1].resume, true, 'after generation 1 the run dir may hold checkpoints');
  assert.equal(m.worldSize, 2);
});

test('a member that never answers the abort does not block the re-form: past the deadline the generation forms', () => {
  const { m } = formed(['w-a', 'w-b', 'w-c']);
  steps(m, 1, 0, 4, 100);
  m.handle({ kind: 'stopped', now: 200, msg: stopped('w-c', 1, 5, false, 'ring peer lost') });
  assert.equal(m.phase, 'reforming');
  m.handle({ kind: 'stopped', now: 300, msg: stopped('w-a', 1, 5) });
  // w-b never answers the abort but keeps beating; the deadline (allreduce + 2 heartbeat timeouts) passes.
  m.handle({ kind: 'seen', now: 16_000, workerId: 'w-b' });
  for (const id of ['w-a', 'w-c']) m.handle({ kind: 'seen', now: 16_000, workerId: id });
  const out = m.handle({ kind: 'tick', now: 16_301 });
  assert.deepEqual(sent(out, 'coord.start').map(([to, s]) => [to, s.generation, s.resumeStep]), [['w-a', 2, 5], ['w-b', 2, 5], ['w-c', 2, 5]]);
});

test('a replacement grows the generation back at a common step boundary', () => {
  const { m } = formed(['w-a', 'w-b']);
  steps(m, 1, 0, 6, 100);
  const out = m.handle({ kind: 'hello', now: 200, from: 'w-c', msg: hello('w-c') });
  const aborts = sent(out, 'coord.abort');
  assert.deepEqual(aborts.map(([to, a]) => [to, a.atStep]), [['w-a', 9], ['w-b', 9]], 'the members stop before step 6 + 3');
  assert.deepEqual(sent(out, 'coord.start'), [], 'nobody starts before the members stopped');
  assert.equal(effects(out, 'worker-failed').length, 0, 'a join is no failure');
  steps(m, 1, 7, 8, 300);
  m.handle({ kind: 'stopped', now: 400, msg: stopped('w-a', 1, 9) });
  const grown = m.handle({ kind: 'stopped', now: 410, msg: stopped('w-b', 1, 9) });
  const starts = sent(grown, 'coord.start');
  assert.deepEqual(starts.map(([to, s]) => [to, s.generation, s.rank, s.worldSize, s.resumeStep, s.source]),
    [['w-a', 2, 0, 3, 9, 0], ['w-b', 2, 1, 3, 9, 0], ['w-c', 2, 2, 3, 9, 0]]);
});

test('a worker that restarts under the same id is a failure of its generation', () => {
  const { m } = formed(['w-a', 'w-b']);
  steps(m, 1, 0, 2, 100);
  const out = m.handle({ kind: 'hello', now: 200, from: 'w-b#2', msg: hello('w-b') });
  assert.equal(effects(out, 'worker-failed').length, 1);
  assert.deepEqual(sent(out, 'coord.abort').map(([to, a]) => [to, a.atStep]), [['w-a', null]], 'the new incarnation is in no generation yet');
  const re = m.handle({ kind: 'stopped', now: 300, msg: stopped('w-a', 1, 3) });
  assert.deepEqual(sent(re, 'coord.start').map(([to, s]) => [to, s.generation, s.resumeStep]), [['w-a', 2, 3], ['w-b#2', 2, 3]], 'the new incarnation\'s route is used');
});

test('a rollback restarts from the checkpoint at or before the onset with lr × lrFactor; past maxRollbacks it stops', () => {
  const { m } = formed(['w-a', 'w-b'], { maxRollbacks: 1, lrFactor: 0.5 });
  steps(m, 1, 0, 19, 100);
  const rb = m.handle({ kind: 'rollback', now: 200, reason: 'entropy collapse in layer 0', onset: 12 });
  assert.deepEqual(effects(rb, 'guard-reset').length, 1);
  assert.deepEqual(sent(rb, 'coord.abort').map(([, a]) => a.atStep), [22, 22]);
  assert.deepEqual(effects(rb, 'event').map((e) => [e.event.kind, e.event.step]), [['rollback', 12], ['generation', 20]]);
  assert.equal(m.lrScale, 0.5);
  m.handle({ kind: 'stopped', now: 300, msg: stopped('w-a', 1, 22) });
  const re = m.handle({ kind: 'stopped', now: 300, msg: stopped('w-b', 1, 22) });
  const [[, start]] = sent(re, 'coord.start');
  assert.deepEqual([start.generation, start.rollbackTo, start.resumeStep, start.source, start.lrScale], [2, 12, 12, -1, 0.5],
    'rank 0 loads the checkpoint; no replica\'s held state counts');
  assert.equal(effects(re, 'persist')[0].state.rollbacks, 1);
  assert.equal(effects(re, 'persist')[0].state.lrScale, 0.5);
  // The latest checkpoint at or before step 12 was step 10: the first report says so, and the ledger drops 10..19.
  const first = m.handle({ kind: 'report', now: 400, workerId: 'w-a', generation: 2, step: 10 });
  assert.deepEqual(effects(first, 'rolled-back'), [{ kind: 'rolled-back', step: 10 }]);
  assert.deepEqual(effects(m.handle({ kind: 'report', now: 400, workerId: 'w-b', generation: 2, step: 10 }), 'rolled-back'), [], 'once');
  steps(m, 2, 11, 14, 500);
  const again = m.handle({ kind: 'rollback', now: 600, reason: 'entropy collapse in layer 1', onset: 13 });
  assert.deepEqual(sent(again, 'coord.start'), []);
  assert.deepEqual(sent(again, 'coord.stop').map(([to, s]) => [to, s.checkpoint, s.atStep]), [['w-a', true, 17], ['w-b', true, 17]]);
  assert.match(sent(again, 'coord.stop')[0][1].reason, /1 rollbacks already: stopping/);
  assert.equal(m.phase, 'stopping');
});

test('a stop request: every rank stops at one boundary with a checkpoint; the job ends early when all have stopped', () => {
  const { m } = formed(['w-a', 'w-b']);
  steps(m, 1, 0, 4, 100);
  const out = m.handle({ kind: 'stop', now: 200, reason: 'SIGTERM received' });
  assert.deepEqual(sent(out, 'coord.stop').map(([to, s]) => [to, s.atStep, s.checkpoint]), [['w-a', 7, true], ['w-b', 7, true]]);
  assert.deepEqual(m.handle({ kind: 'stop', now: 210, reason: 'SIGTERM received' }).send, [], 'a second signal changes nothing');
  assert.deepEqual(effects(m.handle({ kind: 'stopped', now: 300, msg: stopped('w-a', 1, 7, false, 'stop requested') }), 'complete'), []);
  const end = m.handle({ kind: 'stopped', now: 310, msg: stopped('w-b', 1, 7, false, 'stop requested') });
  assert.deepEqual(effects(end, 'complete'), [{ kind: 'complete', stoppedEarly: true }]);
  assert.equal(effects(end, 'persist')[0].state.done, false, 'a stopped job resumes later');
  assert.equal(m.phase, 'done');
});

test('a stop while gathering ends the job at once', () => {
  const m = new Membership<string>(opts({ expectWorkers: 2 }));
  m.handle({ kind: 'hello', now: 0, from: 'w-a', msg: hello('w-a') });
  assert.deepEqual(effects(m.handle({ kind: 'stop', now: 10, reason: 'SIGINT received' }), 'complete'), [{ kind: 'complete', stoppedEarly: true }]);
});

test('finish: the job completes when every rank is done; a late joiner is told the job is over', () => {
  const { m } = formed(['w-a', 'w-b']);
  steps(m, 1, 0, 99, 100);
  assert.deepEqual(m.handle({ kind: 'done', now: 200, msg: done('w-a', 1, 100) }).effects, []);
  const end = m.handle({ kind: 'done', now: 210, msg: done('w-b', 1, 100) });
  assert.deepEqual(effects(end, 'complete'), [{ kind: 'complete', stoppedEarly: false }]);
  assert.equal(effects(end, 'persist')[0].state.done, true);
  assert.deepEqual(sent(end, 'coord.stop').map(([to, s]) => [to, s.reason, s.checkpoint]), [['w-a', 'job complete', false], ['w-b', 'job complete', false]]);
  const late = m.handle({ kind: 'hello', now: 300, from: 'w-c', msg: hello('w-c') });
  assert.deepEqual(late.send, [{ to: 'w-c', msg: { type: 'coord.stop', reason: 'job complete', checkpoint: false, atStep: null } }]);
  assert.deepEqual(late.effects, []);
  assert.equal(m.has('w-c'), false);
  assert.deepEqual(m.handle({ kind: 'stop', now: 400, reason: 'SIGTERM received' }).send, [], 'nothing runs any more');
});

test('a fatal stop fails the job with the worker\'s own code and stops everyone without a checkpoint', () => {
  const { m } = formed(['w-a', 'w-b']);
  steps(m, 1, 0, 3, 100);
  const out = m.handle({ kind: 'stopped', now: 200, msg: stopped('w-b', 1, 4, true, 'SGT_NONFINITE_LOSS: loss became NaN at step 4') });
  const [fail] = effects(out, 'fail');
  assert.ok(fail.error instanceof SigmaError);
  assert.equal(fail.error.code, 'SGT_NONFINITE_LOSS');
  assert.deepEqual(sent(out, 'coord.stop').map(([to, s]) => [to, s.checkpoint]), [['w-a', false], ['w-b', false]]);
  const late = m.handle({ kind: 'hello', now: 300, from: 'w-c', msg: hello('w-c') });
  assert.match(sent(late, 'coord.stop')[0][1].reason, /SGT_NONFINITE_LOSS/);
});

test('more workers than samples per step fail the job with the key to change', () => {
  const { last } = formed(['w-a', 'w-b', 'w-c'], { globalBatch: 2 });
  const [fail] = effects(last, 'fail');
  assert.equal(fail.error.code, 'SGT_CONFIG_INVALID');
  assert.match(fail.error.message, /train\.globalBatch 2 .*3 workers/);
  assert.deepEqual(sent(last, 'coord.start'), []);
});

test('a restarted coordinator continues from the persisted state: generation numbers go on, temperature and lr scale stay', () => {
  const persisted: JobState = { generation: 4, totalSteps: 100, configHash: HASH, done: false, temperatureOverride: { value: 0.1, fromStep: 30 }, lrScale: 0.25, rollbacks: 2 };
  const m = new Membership<string>(opts({ expectWorkers: 1, resume: 'never' }), persisted);
  const out = m.handle({ kind: 'hello', now: 0, from: 'w-a', msg: hello('w-a', { generation: 4, step: 40 }) });
  const [[, s]] = sent(out, 'coord.start');
  assert.deepEqual([s.generation, s.resume, s.resumeStep, s.source, s.lrScale, s.temperatureOverride], [5, true, 40, 0, 0.25, { value: 0.1, fromStep: 30 }]);
  const finished = new Membership<string>(opts(), { ...persisted, done: true });
  assert.equal(finished.finishedBefore, true);
  assert.deepEqual(sent(finished.handle({ kind: 'hello', now: 0, from: 'w-a', msg: hello('w-a') }), 'coord.stop').map(([to]) => to), ['w-a']);
});

test('a restarted coordinator re-attaches a running generation from its heartbeats without re-forming it', () => {
  const m = new Membership<string>(opts({ expectWorkers: 2 }), { generation: 2, totalSteps: 100, configHash: HASH, done: false, temperatureOverride: null, lrScale: 1, rollbacks: 0 });
  const a = m.handle({ kind: 'heartbeat', now: 0, from: 'w-a', msg: beat('w-a', { generation: 3, rank: 0, step: 21, worldSize: 2, state: 'training' }) });
  assert.deepEqual(sent(a, 'coord.start'), []);
  assert.equal(m.generation, 3, 'a generation the old coordinator formed but never persisted');
  m.handle({ kind: 'heartbeat', now: 5, from: 'w-b', msg: beat('w-b', { generation: 3, rank: 1, step: 20, worldSize: 2, state: 'training' }) });
  assert.equal(m.phase, 'running');
  assert.deepEqual(m.ranks(), ['w-a', 'w-b']);
  // A later set-temperature is scheduled past the most advanced replica: step 20 (held 21) + 3 boundaries.
  const t = m.handle({ kind: 'set-temperature', now: 10, from: 'ctl', value: 0.5 });
  assert.deepEqual(sent(t, 'coord.set-temperature').map(([to, x]) => [to, x.fromStep, x.generation]), [['w-a', 23, 3], ['w-b', 23, 3]]);
  assert.deepEqual(sent(t, 'ctl.ok').map(([to, x]) => [to, x.fromStep]), [['ctl', 23]]);
  assert.deepEqual(effects(t, 'persist')[0].state.temperatureOverride, { value: 0.5, fromStep: 23 });
});
