// The sample ledger: one JSON line per completed optimizer step, appended to <runDir>/ledger.jsonl; a restarted
// coordinator reloads it, so resume and re-sharding keep every step exactly once. With each report's state digest
// (the replica's chained per-step digest, protocol v3) it also proves no step was applied twice or lost: a report must
// start from the digest recorded for the step before it, and every report of a step must carry the digest recorded
// for it — except a re-run of the step from that same predecessor in a later generation (after a failure, with
// another world size), which replaces the abandoned lineage from that step on. Anything else stops the job.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SigmaError } from '../shared/errors.js';

export interface LedgerEntry {
  step: number;
  epoch: number;
  generation: number;
  worldSize: number;
  samples: number;
  loss: number;
  /** The reporting replica's state digest after this step (absent from reports before protocol v3). */
  digest?: string;
  /** The rank whose report was recorded (the first one). */
  rank?: number;
}

/** One rank's report of a step, as the ledger sees it; `prevDigest`: the digest the step started from. */
export type StepReport = LedgerEntry & { rank: number; prevDigest?: string };

export class Ledger {
  private readonly done = new Map<number, LedgerEntry>();
  /** Per step: the generations that applied it (a step is applied once per generation that reports it). */
  private readonly appliedIn = new Map<number, Set<number>>();

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) {
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const e = JSON.parse(line) as LedgerEntry;
          if (!this.done.has(e.step)) this.done.set(e.step, e);
          this.applied(e.step).add(e.generation);
        } catch {
          // a torn last line from a crash: the step will be reported again
        }
      }
    }
  }

  /**
   * Records a rank's report of a step; returns true for the step's first report (it is appended to the file), false
   * for a later one (another rank, or a report re-sent after a coordinator restart). Throws SGT_STEP_DIGEST when the
   * report's digest differs from the one recorded for the step: a replica holds another state after the same step
   * (the step applied twice, or replicas diverged), so what the ledger says was trained is not what was.
   */
  record(r: StepReport): boolean {
    const first = this.done.get(r.step);
    // The report must continue the recorded chain: a replica that starts step s from any state other than the one
    // recorded after step s−1 has applied a step twice, lost one, or diverged.
    const before = this.done.get(r.step - 1)?.digest;
    if (r.prevDigest !== undefined && before !== undefined && r.prevDigest !== before) {
      throw new SigmaError('SGT_STEP_DIGEST',
        `rank ${r.rank} (generation ${r.generation}) ran step ${r.step} from state digest ${r.prevDigest}, but the state recorded after ` +
        `step ${r.step - 1} is ${before}: the replica applied a step twice, lost one, or diverged. The job stops so that no checkpoint ` +
        `records it. Resume from the last checkpoint before step ${r.step} (--resume auto) and report it with ${this.path}`);
    }
    if (first && r.digest !== undefined && first.digest !== undefined && r.digest !== first.digest) {
      // The same predecessor, a later generation: the step was re-run after a failure (e.g. with another world size, so
      // another reduced gradient); the surviving lineage replaces the abandoned one from this step on.
      if (r.prevDigest !== undefined && before !== undefined && r.generation > first.generation) {
        this.truncate(r.step);
        this.add(r);
        return false;
      }
      throw new SigmaError('SGT_STEP_DIGEST',
        `step ${r.step} was reported with two state digests: rank ${first.rank ?? '?'} (generation ${first.generation}) ${first.digest}, ` +
        `rank ${r.rank} (generation ${r.generation}) ${r.digest}. A replica applied the step on another state (twice, or after diverging); ` +
        `the job stops so that no checkpoint records it. Resume from the last checkpoint before step ${r.step} (--resume auto) and report it with ${this.path}`);
    }
    if (!first) {
      this.add(r);
      return true;
    }
    if (first.digest === undefined && r.digest !== undefined) Object.assign(first, { digest: r.digest, rank: r.rank });
    this.applied(r.step).add(r.generation);
    return false;
  }

  private add(r: StepReport): void {
    const e: LedgerEntry = { step: r.step, epoch: r.epoch, generation: r.generation, worldSize: r.worldSize, samples: r.samples, loss: r.loss };
    if (r.digest !== undefined) Object.assign(e, { digest: r.digest, rank: r.rank });
    this.done.set(r.step, e);
    this.applied(r.step).add(r.generation);
    appendFileSync(this.path, JSON.stringify(e) + '\n');
  }

  /** How many generations applied `step` (1 in a healthy job; 0 if it was never reported). */
  applications(step: number): number {
    return this.appliedIn.get(step)?.size ?? 0;
  }

  /** A rollback to the checkpoint of `step`: steps from there on will run again, so they leave the ledger. */
  truncate(step: number): void {
    for (const s of [...this.done.keys()]) {
      if (s >= step) {
        this.done.delete(s);
        this.appliedIn.delete(s);
      }
    }
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, this.entries().map((e) => JSON.stringify(e) + '\n').join(''));
    renameSync(tmp, this.path);
  }

  /** Highest recorded step + 1 (0 when empty). */
  get next(): number {
    let m = -1;
    for (const s of this.done.keys()) m = Math.max(m, s);
    return m + 1;
  }

  entries(): LedgerEntry[] {
    return [...this.done.values()].sort((a, b) => a.step - b.step);
  }

  private applied(step: number): Set<number> {
    let s = this.appliedIn.get(step);
    if (!s) this.appliedIn.set(step, (s = new Set()));
    return s;
  }
}
