// The entropy-collapse guard's detector: a pure function of the per-step entropies, tested without sockets.
// A layer "collapses" when its lowest head entropy stays below `fraction` × its running maximum (or within
// `boundMargin` nats of its Theorem 3.1 bound) for `window` consecutive steps.
import type { Config } from '../shared/config/index.js';

export interface CollapseAlarm {
  layer: number;
  step: number;
  entropy: number;
  runningMax: number;
  bound: number | null;
}

export class CollapseDetector {
  private runningMax: number[] = [];
  private streak: number[] = [];
  private flagged: boolean[] = [];
  private seen = 0;

  constructor(private readonly o: Readonly<Config['guard']>) {}

  /** Feeds one step's entropies [layer][head] (and bounds, when known); returns layers that just crossed into collapse. */
  observe(step: number, entropy: number[][], bounds?: number[][] | null): CollapseAlarm[] {
    const alarms: CollapseAlarm[] = [];
    this.seen += 1;
    entropy.forEach((heads, l) => {
      const e = Math.min(...heads);
      // The running maximum starts after warm-up: near-uniform attention at initialisation is not a baseline.
      if (this.seen > this.o.warmupSteps) this.runningMax[l] = Math.max(this.runningMax[l] ?? -Infinity, e);
      const bound = bounds?.[l] ? Math.min(...bounds[l]) : null;
      const low = this.runningMax[l] !== undefined && e < this.o.fraction * this.runningMax[l] || (this.o.boundMargin > 0 && bound !== null && e < bound + this.o.boundMargin);
      this.streak[l] = low && this.seen > this.o.warmupSteps ? (this.streak[l] ?? 0) + 1 : 0;
      const now = this.streak[l] >= this.o.window;
      if (now && !this.flagged[l]) alarms.push({ layer: l, step, entropy: e, runningMax: this.runningMax[l], bound });
      this.flagged[l] = now;
    });
    return alarms;
  }

  /** Layers judged collapsing right now. */
  collapsing(): boolean[] {
    return [...this.flagged];
  }

  /** After a rollback the history restarts (the rolled-back steps never happened). */
  reset(): void {
    this.runningMax = [];
    this.streak = [];
    this.flagged = [];
    this.seen = 0;
  }
}
