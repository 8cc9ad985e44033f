// The sample ledger: one JSON line per completed optimizer step (first report wins), appended to <runDir>/ledger.jsonl;
// a restarted coordinator reloads it, so resume and re-sharding keep every step exactly once.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface LedgerEntry {
  step: number;
  epoch: number;
  generation: number;
  worldSize: number;
  samples: number;
  loss: number;
}

export class Ledger {
  private readonly done = new Map<number, LedgerEntry>();

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    if (existsSync(path)) {
      for (const line of readFileSync(path, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          const e = JSON.parse(line) as LedgerEntry;
          if (!this.done.has(e.step)) this.done.set(e.step, e);
        } catch {
          // a torn last line from a crash: the step will be reported again
        }
      }
    }
  }

  /** Records a completed step once; returns false if it was already recorded. */
  record(e: LedgerEntry): boolean {
    if (this.done.has(e.step)) return false;
    this.done.set(e.step, e);
    appendFileSync(this.path, JSON.stringify(e) + '\n');
    return true;
  }

  /** A rollback to the checkpoint of `step`: steps from there on will run again, so they leave the ledger. */
  truncate(step: number): void {
    for (const s of [...this.done.keys()]) if (s >= step) this.done.delete(s);
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
}
