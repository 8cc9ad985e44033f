// Reads a run directory (coordinator/runlog.ts record types) into memory for the run report, tolerating missing files
// and torn or malformed lines (a crash mid-append): those are skipped and listed, never fatal.
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { SigmaError } from '../../shared/errors.js';
import type { LedgerEntry } from '../ledger.js';
import { EVENT_KINDS, type DiagnosticsRecord, type EvalRecord, type EventRecord, type StepRecord } from '../runlog.js';

/** coordinator.json as the coordinator persists it; every field optional here because the file is read, not trusted. */
export interface CoordinatorState {
  generation?: number;
  totalSteps?: number;
  configHash?: string;
  done?: boolean;
}

/** A line that was not used, with why (a torn last line is the expected case). */
export interface SkippedLine {
  file: string;
  /** 1-based. */
  line: number;
  reason: string;
}

export interface RunData {
  /** Absolute path. */
  dir: string;
  /** Sorted by step; one record per step (first in the file wins, as in the ledger). */
  steps: StepRecord[];
  /** Sorted by step. */
  diagnostics: DiagnosticsRecord[];
  /** Sorted by step (stable: file order within a step). */
  evals: EvalRecord[];
  /** File order (the coordinator appends them in time order). */
  events: EventRecord[];
  ledger: LedgerEntry[];
  coordinator?: CoordinatorState;
  /** Which of the run's files were present. */
  files: string[];
  skipped: SkippedLine[];
}

export const RUN_FILES = ['steps.jsonl', 'diagnostics.jsonl', 'evals.jsonl', 'events.jsonl', 'ledger.jsonl', 'coordinator.json'] as const;

const KNOWN_EVENTS = new Set<string>(EVENT_KINDS);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const finiteStep = (r: Record<string, unknown>): boolean => typeof r.step === 'number' && Number.isFinite(r.step);

/** Why a parsed line cannot be used as this file's record, or undefined if it can. Numbers may be null (JSON's NaN). */
type Check = (r: Record<string, unknown>) => string | undefined;

const checks: Record<string, Check> = {
  'steps.jsonl': (r) => (!finiteStep(r) ? 'no numeric "step"' : undefined),
  'diagnostics.jsonl': (r) => (!finiteStep(r) ? 'no numeric "step"' : undefined),
  'evals.jsonl': (r) => (!finiteStep(r) ? 'no numeric "step"' : undefined),
  'events.jsonl': (r) => (typeof r.kind !== 'string' || !KNOWN_EVENTS.has(r.kind) ? `unknown event kind ${JSON.stringify(r.kind)}` : undefined),
  'ledger.jsonl': (r) => (!finiteStep(r) ? 'no numeric "step"' : undefined),
};

/** The file's text, or undefined if it does not exist. */
async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SigmaError('SGT_REPORT', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function readJsonl<T>(dir: string, file: string, skipped: SkippedLine[], files: string[]): Promise<T[]> {
  const text = await readIfPresent(join(dir, file));
  if (text === undefined) return [];
  files.push(file);
  const out: T[] = [];
  const lines = text.split('\n');
  const check = checks[file];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      const torn = lines.slice(i + 1).every((l) => !l.trim());
      skipped.push({ file, line: i + 1, reason: torn ? 'torn last line (not valid JSON)' : 'not valid JSON' });
      return;
    }
    const why = isObject(value) ? check?.(value) : 'not a JSON object';
    if (why) skipped.push({ file, line: i + 1, reason: why });
    else out.push(value as T);
  });
  return out;
}

/** A protocol-v2 run's record (entropy [layer][head], accuracy) in today's shape (sites, named metrics). */
function normaliseStep(s: StepRecord): StepRecord {
  const raw = s as unknown as Record<string, unknown>;
  const entropy = !Array.isArray(s.entropy) ? []
    : s.entropy.map((e, layer) => (Array.isArray(e) ? { attn: 'self' as const, layer, heads: e as number[] } : e));
  const metrics = isObject(raw.metrics) ? s.metrics : typeof raw.accuracy === 'number' ? { accuracy: raw.accuracy } : {};
  return { ...s, entropy, metrics };
}

function normaliseEval(e: EvalRecord): EvalRecord {
  const raw = e as unknown as Record<string, unknown>;
  if (isObject(raw.metrics)) return e;
  const metrics: Record<string, number> = {};
  for (const [from, to] of [['valTop1', 'val_top1'], ['valTop5', 'val_top5'], ['valLoss', 'val_loss']]) if (typeof raw[from] === 'number') metrics[to] = raw[from] as number;
  return { ...e, metrics };
}

function byStep<T extends { step: number }>(records: T[]): T[] {
  return records.map((r, i) => [r, i] as const).sort((a, b) => a[0].step - b[0].step || a[1] - b[1]).map(([r]) => r);
}

/** Keeps the first record per step (the ledger's rule), sorted by step. */
function firstPerStep<T extends { step: number }>(records: T[]): T[] {
  const seen = new Map<number, T>();
  for (const r of records) if (!seen.has(r.step)) seen.set(r.step, r);
  return [...seen.values()].sort((a, b) => a.step - b.step);
}

/**
 * Parses every record file of a run directory. Throws SGT_REPORT if the directory does not exist, is not a directory,
 * or holds none of the run files; a missing file is an empty list, a bad line is skipped and listed in `skipped`.
 */
export async function loadRun(runDir: string): Promise<RunData> {
  const dir = resolve(runDir);
  const info = await stat(dir).catch(() => undefined);
  if (!info) {
    throw new SigmaError('SGT_REPORT', `run dir ${dir} does not exist; pass the --run-dir the coordinator wrote to`);
  }
  if (!info.isDirectory()) {
    throw new SigmaError('SGT_REPORT', `run dir ${dir} is not a directory; pass the --run-dir the coordinator wrote to`);
  }
  const skipped: SkippedLine[] = [];
  const files: string[] = [];
  // A step without an entropy matrix still has its loss, lr and throughput.
  const steps = firstPerStep(await readJsonl<StepRecord>(dir, 'steps.jsonl', skipped, files)).map(normaliseStep);
  const diagnostics = byStep(await readJsonl<DiagnosticsRecord>(dir, 'diagnostics.jsonl', skipped, files));
  const evals = byStep(await readJsonl<EvalRecord>(dir, 'evals.jsonl', skipped, files)).map(normaliseEval);
  const events = await readJsonl<EventRecord>(dir, 'events.jsonl', skipped, files);
  const ledger = firstPerStep(await readJsonl<LedgerEntry>(dir, 'ledger.jsonl', skipped, files));
  let coordinator: CoordinatorState | undefined;
  const stateText = await readIfPresent(join(dir, 'coordinator.json'));
  if (stateText !== undefined) {
    files.push('coordinator.json');
    try {
      const v: unknown = JSON.parse(stateText);
      if (isObject(v)) coordinator = v as CoordinatorState;
      else skipped.push({ file: 'coordinator.json', line: 1, reason: 'not a JSON object' });
    } catch {
      skipped.push({ file: 'coordinator.json', line: 1, reason: 'not valid JSON' });
    }
  }
  if (files.length === 0) {
    throw new SigmaError('SGT_REPORT', `run dir ${dir} holds none of ${RUN_FILES.join(', ')}; is it a sigmatrain run dir?`);
  }
  return { dir, steps, diagnostics, evals, events, ledger, coordinator, files, skipped };
}
