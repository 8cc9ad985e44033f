// Fault injection, for tests only: SGT_FAULT_PERTURB=RANK:STEP makes the replica of that rank add 1e-3 to one
// parameter entry once it holds STEP steps, just before the replica consistency check there. It is read here and
// nowhere else; test/integration/runtime/faults.test.ts uses it to prove that diverged replicas stop the job.
import type { ReplicaState } from './train/state.js';

const spec = process.env.SGT_FAULT_PERTURB;
const m = spec ? /^(\d+):(\d+)$/.exec(spec) : null;
if (spec && !m) throw new Error(`SGT_FAULT_PERTURB must be RANK:STEP (a test-only fault injection), got "${spec}"`);
const fault = m ? { rank: Number(m[1]), step: Number(m[2]) } : null;

/** Perturbs this replica if the injected fault names this rank and step; returns whether it did. */
export async function injectFault(state: ReplicaState, rank: number, step: number): Promise<boolean> {
  if (!fault || fault.rank !== rank || fault.step !== step) return false;
  const name = state.order[0];
  const values = (await state.snapshot()).get(name)!;
  values[0] += 1e-3;
  state.restore(new Map([[name, values]]));
  return true;
}
