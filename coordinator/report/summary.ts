// The run's headline numbers as data (summarize) and as the one set of formatted rows that both report.html's header
// and report.md's table print, so the two never disagree on a value or its precision.
import type { SiteHeads } from '../../shared/sites.js';
import type { RunData } from './load.js';

export interface RunSummary {
  /** Absolute path of the run directory. */
  runDir: string;
  /** Distinct steps recorded in steps.jsonl (in ledger.jsonl for a run without steps.jsonl). */
  steps: number;
  firstStep?: number;
  lastStep?: number;
  /** Planned steps (coordinator.json). */
  totalSteps?: number;
  /** coordinator.json says the job completed. */
  done?: boolean;
  /** Highest generation seen in coordinator.json, steps or generation events (0 if none). */
  generations: number;
  /** 'failure' events (a worker lost, left or restarted mid-generation). */
  failures: number;
  rollbacks: number;
  collapseAlarms: number;
  /** Loss at the last recorded step. */
  finalLoss?: number;
  /** valTop1 (a fraction in [0, 1]) of the eval with the highest step. */
  lastValTop1?: number;
  lastValLoss?: number;
  /** Every metric of the last eval, by the task's names. */
  lastEval?: Record<string, number>;
  lastEvalStep?: number;
  evals: number;
  /** Smallest per-head attention entropy over all steps, nats, and where it was. */
  minEntropy?: { nats: number; step: number; layer: number; head: number };
  /** samplesPerSecond of the last step record, as the coordinator logged it (since coordinator start). */
  samplesPerSecond?: number;
  /** Sum of samples over recorded steps. */
  samples: number;
  /** Earliest and latest record time in the run's files, ms since the Unix epoch. */
  startTime?: number;
  endTime?: number;
  /** Lines skipped as torn or malformed. */
  skippedLines: number;
  /** Where steps, final loss and samples came from. */
  stepSource: 'steps.jsonl' | 'ledger.jsonl' | 'none';
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function summarize(run: RunData): RunSummary {
  const { evals, events } = run;
  // Runs written before steps.jsonl existed still have the ledger (step, loss, samples per step).
  const steps = run.steps.length ? run.steps : run.ledger.map((e) => ({ ...e, entropy: [] as SiteHeads[], time: undefined, samplesPerSecond: undefined }));
  const first = steps[0];
  const last = steps[steps.length - 1];
  let minEntropy: RunSummary['minEntropy'];
  for (const s of steps) {
    s.entropy.forEach(({ layer, heads }) => {
      if (!Array.isArray(heads)) return;
      heads.forEach((nats, head) => {
        if (finite(nats) && (minEntropy === undefined || nats < minEntropy.nats)) minEntropy = { nats, step: s.step, layer, head };
      });
    });
  }
  const generationSeen = [
    run.coordinator?.generation,
    ...steps.map((s) => s.generation),
    ...events.filter((e) => e.kind === 'generation').map((e) => e.generation),
  ].filter(finite);
  const times = [...run.steps, ...run.diagnostics, ...evals, ...events].map((r) => r.time).filter(finite);
  const lastEval = evals[evals.length - 1];
  const count = (kind: string): number => events.filter((e) => e.kind === kind).length;
  return {
    runDir: run.dir,
    steps: steps.length,
    firstStep: first?.step,
    lastStep: last?.step,
    totalSteps: finite(run.coordinator?.totalSteps) ? run.coordinator.totalSteps : undefined,
    done: typeof run.coordinator?.done === 'boolean' ? run.coordinator.done : undefined,
    generations: generationSeen.length ? Math.max(...generationSeen) : 0,
    failures: count('failure'),
    rollbacks: count('rollback'),
    collapseAlarms: count('collapse'),
    finalLoss: finite(last?.loss) ? last.loss : undefined,
    lastValTop1: finite(lastEval?.metrics.val_top1) ? lastEval.metrics.val_top1 : undefined,
    lastValLoss: finite(lastEval?.metrics.val_loss) ? lastEval.metrics.val_loss : undefined,
    lastEval: lastEval?.metrics,
    lastEvalStep: lastEval?.step,
    evals: evals.length,
    minEntropy,
    samplesPerSecond: finite(last?.samplesPerSecond) ? last.samplesPerSecond : undefined,
    samples: steps.reduce((a, s) => a + (finite(s.samples) ? s.samples : 0), 0),
    startTime: times.length ? Math.min(...times) : undefined,
    endTime: times.length ? Math.max(...times) : undefined,
    skippedLines: run.skipped.length,
    stepSource: run.steps.length ? 'steps.jsonl' : run.ledger.length ? 'ledger.jsonl' : 'none',
  };
}

/** Shown for a value the run's files do not have. */
export const MISSING = '—';

/** The report's number formats, one per kind of quantity. */
export const fmt = {
  int: (v: number | undefined): string => (v === undefined ? MISSING : String(Math.round(v))),
  loss: (v: number | undefined): string => (v === undefined ? MISSING : v.toFixed(4)),
  /** val_top1 and other accuracies: a fraction with 3 decimals. */
  fraction: (v: number | undefined): string => (v === undefined ? MISSING : v.toFixed(3)),
  nats: (v: number | undefined): string => (v === undefined ? MISSING : v.toFixed(3)),
  rate: (v: number | undefined): string => (v === undefined ? MISSING : v.toFixed(1)),
  /** ISO 8601 UTC to the second. */
  time: (ms: number | undefined): string => (ms === undefined ? MISSING : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')),
  duration(seconds: number): string {
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}h ${m}m ${s % 60}s` : m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
  },
};

export interface SummaryRow {
  /** Stable machine name (also the markdown table's first column). */
  key: string;
  label: string;
  /** Formatted number or text; MISSING when absent. */
  value: string;
  /** Context for a person; never a number that the value column already holds in another format. */
  note: string;
}

/** The headline rows, in display order. */
export function summaryRows(s: RunSummary): SummaryRow[] {
  const span =
    s.firstStep === undefined ? 'no steps recorded' : `steps ${s.firstStep}–${s.lastStep}${s.stepSource === 'ledger.jsonl' ? ' (from ledger.jsonl)' : ''}`;
  const planned = s.totalSteps === undefined ? '' : ` of ${s.totalSteps} planned`;
  const state = s.done === undefined ? '' : s.done ? '; job done' : '; job not done';
  const when =
    s.startTime === undefined
      ? MISSING
      : `${fmt.time(s.startTime)} → ${fmt.time(s.endTime)} (${fmt.duration((s.endTime! - s.startTime) / 1000)})`;
  const m = s.minEntropy;
  return [
    { key: 'steps', label: 'Steps', value: fmt.int(s.steps), note: `${span}${planned}${state}` },
    { key: 'generations', label: 'Generations', value: fmt.int(s.generations), note: 'highest generation formed' },
    { key: 'failures', label: 'Failures', value: fmt.int(s.failures), note: `worker failures; ${s.rollbacks} rollback(s), ${s.collapseAlarms} collapse alarm(s)` },
    { key: 'final_loss', label: 'Final loss', value: fmt.loss(s.finalLoss), note: s.lastStep === undefined ? '' : `train loss at step ${s.lastStep}` },
    // One card per metric of the last eval, in the task's names (a loss with 4 decimals, fractions with 3).
    ...(s.lastEval && Object.keys(s.lastEval).length
      ? Object.entries(s.lastEval).map(([name, v]) => ({
          key: name, label: `Last ${name}`, value: /loss/.test(name) ? fmt.loss(v) : fmt.fraction(v),
          note: `${/loss/.test(name) ? 'per unit' : 'fraction'}; eval at step ${s.lastEvalStep}`,
        }))
      : [{ key: 'val_top1', label: 'Last val_top1', value: fmt.fraction(undefined), note: 'no evals recorded' }]),
    {
      key: 'min_entropy',
      label: 'Min entropy',
      value: fmt.nats(m?.nats),
      note: m === undefined ? '' : `nats; layer ${m.layer} head ${m.head} at step ${m.step}`,
    },
    { key: 'samples_per_second', label: 'Samples/s', value: fmt.rate(s.samplesPerSecond), note: 'last logged, averaged since coordinator start' },
    { key: 'when', label: 'When', value: when, note: 'UTC' },
  ];
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function summaryMarkdown(title: string, s: RunSummary, skipped: string[]): string {
  const rows = summaryRows(s);
  const lines = [
    `# ${title}`,
    '',
    `Run dir: \`${s.runDir}\` — charts in [report.html](report.html).`,
    '',
    '| metric | value | note |',
    '| --- | --- | --- |',
    ...rows.map((r) => `| ${r.key} | ${cell(r.value)} | ${cell(r.note)} |`),
    '',
  ];
  if (skipped.length) lines.push(`Skipped ${skipped.length} line(s): ${skipped.join('; ')}.`, '');
  return lines.join('\n');
}
