// The job state a coordinator persists in <runDir>/coordinator.json and a restarted coordinator reloads: the generation
// counter, the job's step count, and what the job decided along the way (temperature, rollbacks and their lr scale).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SigmaError } from '../shared/errors.js';

export interface JobState {
  generation: number;
  totalSteps: number;
  /** Hash of the config the job was started with (a resume under another config is warned about). */
  configHash: string;
  /** Every step ran: a restart of this run has nothing left to do. */
  done: boolean;
  temperatureOverride: { value: number; fromStep: number } | null;
  lrScale: number;
  rollbacks: number;
}

export function jobStatePath(runDir: string): string {
  return join(runDir, 'coordinator.json');
}

/** The persisted state of the job in `runDir`, or undefined for a run dir without one. */
export function readJobState(runDir: string): JobState | undefined {
  const path = jobStatePath(runDir);
  if (!existsSync(path)) return undefined;
  let raw: Partial<JobState>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<JobState>;
  } catch (e) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `${path} is not valid JSON (${(e as Error).message}): restore it, or start the job in another --run-dir`);
  }
  if (!Number.isSafeInteger(raw.generation) || !Number.isSafeInteger(raw.totalSteps) || typeof raw.configHash !== 'string') {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `${path} lacks generation, totalSteps or configHash: restore it, or start the job in another --run-dir`);
  }
  // Files written before the guard existed have no temperature, lr scale or rollback count.
  return {
    generation: raw.generation!, totalSteps: raw.totalSteps!, configHash: raw.configHash, done: raw.done === true,
    temperatureOverride: raw.temperatureOverride ?? null, lrScale: raw.lrScale ?? 1, rollbacks: raw.rollbacks ?? 0,
  };
}

/** Writes the state atomically (temporary file, then rename): a crash leaves the old state or the new, never half. */
export function writeJobState(runDir: string, s: JobState): void {
  const path = jobStatePath(runDir);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(s));
  renameSync(tmp, path);
}
