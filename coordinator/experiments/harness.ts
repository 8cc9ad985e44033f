// What the experiment entry points share: their few options (--out, --quick, --data-root, --workers), running a list
// of jobs sequentially through the real CLI (reusing a job already finished in the same --out), and loading outcomes.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRun, type RunData } from '../report/load.js';
import { crashed, outcome, type OutcomeInput, type RunOutcome } from './analyze.js';
import { runJob, type JobResult } from './jobs.js';

/** The repository root (this file is dist/coordinator/experiments/harness.js). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface ExperimentArgs {
  out: string;
  quick: boolean;
  dataRoot?: string;
  workers: number;
}

export function parseArgs(argv: string[], name: string): ExperimentArgs {
  const a: Partial<ExperimentArgs> = { quick: false, workers: 2 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--out') a.out = resolve(v());
    else if (k === '--quick') a.quick = true;
    else if (k === '--data-root') a.dataRoot = resolve(v());
    else if (k === '--workers') {
      a.workers = Number(v());
      if (!Number.isInteger(a.workers) || a.workers < 1) throw new Error(`--workers must be a positive integer, got ${argv[i]}`);
    } else if (k === '--help' || k === '-h') {
      console.log(`usage: node dist/coordinator/experiments/${name}.js [--out DIR] [--quick] [--data-root DIR] [--workers N]`);
      process.exit(0);
    } else throw new Error(`unknown option ${k}; try --help`);
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  a.out ??= join(ROOT, 'runs', 'experiments', `${name}${a.quick ? '-quick' : ''}-${stamp}`);
  return a as ExperimentArgs;
}

export interface PlannedRun extends OutcomeInput {
  /** `--key value` overrides on top of the experiment's config. */
  flags: [string, string | number][];
}

export interface DoneRun {
  plan: PlannedRun;
  run: RunData;
  outcome: RunOutcome;
}

/**
 * Runs each planned job in turn (sequentially: they share the machine's cores) under <out>/runs/<name>, with its log
 * in <out>/runs/<name>.log and its exit in <out>/runs/<name>.job.json; a job whose .job.json exists is not run again,
 * so rerunning with the same --out resumes an interrupted experiment. A job that neither finished nor stopped on a
 * non-finite loss (a crash, a timeout) stops the experiment: it is not a result.
 */
export async function runAll(
  args: ExperimentArgs,
  config: string,
  plans: PlannedRun[],
  common: [string, string | number][],
  timeoutMs: number,
): Promise<DoneRun[]> {
  const runs = join(args.out, 'runs');
  await mkdir(runs, { recursive: true });
  const done: DoneRun[] = [];
  const t0 = performance.now();
  for (const [i, plan] of plans.entries()) {
    const runDir = join(runs, plan.name);
    const logFile = join(runs, `${plan.name}.log`);
    const jobFile = join(runs, `${plan.name}.job.json`);
    let job: JobResult;
    if (existsSync(jobFile)) {
      job = JSON.parse(await readFile(jobFile, 'utf8')) as JobResult;
    } else {
      // A run dir without its .job.json is from an interrupted attempt: keep it aside, start this run afresh.
      if (existsSync(runDir)) await setAside(runDir, logFile);
      job = await runJob({ config, runDir, logFile, workers: args.workers, flags: [...common, ...plan.flags], timeoutMs });
    }
    const run = await loadRun(runDir).catch((e: unknown) => {
      throw new Error(`${plan.name}: no usable run dir (${(e as Error).message}); its log: ${logFile}`);
    });
    const o = outcome(run, job, plan);
    const bad = crashed(o);
    const status = bad ? `FAILED (${bad}; see ${plan.name}.log)` : o.diverged ? `diverged: ${o.divergedReason}` : 'converged';
    console.log(
      `[${i + 1}/${plans.length}] ${plan.name}: ${status}; val_top1=${o.valTop1?.toFixed(3) ?? '—'} min_entropy=${o.minEntropy?.toFixed(3) ?? '—'}` +
        ` (${job.seconds.toFixed(0)} s; ${((performance.now() - t0) / 1000).toFixed(0)} s so far)`,
    );
    if (bad) {
      const kept = await setAside(runDir, logFile);
      throw new Error(`${plan.name}: the job failed (${bad}), which is not a training outcome; kept as ${kept}; rerun with the same --out to retry it`);
    }
    // Only a job that ended as a training outcome is recorded, so a rerun with the same --out reuses it.
    if (!existsSync(jobFile)) await writeFile(jobFile, JSON.stringify(job, null, 2) + '\n');
    done.push({ plan, run, outcome: o });
  }
  return done;
}

/** Renames a failed or interrupted run dir (and its log) to <dir>.failed-<ms>; resolves with the new dir name. */
async function setAside(runDir: string, logFile: string): Promise<string> {
  const tag = `failed-${Date.now()}`;
  await rename(runDir, `${runDir}.${tag}`).catch(() => undefined);
  if (existsSync(logFile)) await rename(logFile, logFile.replace(/\.log$/, `.${tag}.log`));
  return `${runDir}.${tag}`;
}

/** The config file of an experiment, under configs/experiments/. */
export const configPath = (file: string): string => join(ROOT, 'configs', 'experiments', file);

/** Writes <out>/results.json: the outcomes, as computed, for other tools and tests. */
export async function writeResults(out: string, data: object): Promise<string> {
  const path = join(out, 'results.json');
  await writeFile(path, JSON.stringify(data, null, 2) + '\n');
  return path;
}
