// What the roles share about each task without loading it: its batch unit and its headline evaluation metric (the
// progress bar's number). A new task adds one entry here and its files under worker/tasks/; coordinator/ never changes.

export type BatchUnit = 'samples' | 'tokens' | 'frames';

export interface TaskInfo {
  unit: BatchUnit;
  /** The evaluation metric a person watches (the progress bar and the summary lead with it). */
  headline: string;
  /** Larger is better for the headline (accuracy) or smaller (loss, error rate). */
  higherIsBetter: boolean;
}

export const TASKS = {
  classify: { unit: 'samples', headline: 'val_top1', higherIsBetter: true },
  reverse: { unit: 'tokens', headline: 'val_token_acc', higherIsBetter: true },
} as const satisfies Record<string, TaskInfo>;

export type TaskName = keyof typeof TASKS;

export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

export function taskInfo(name: string): TaskInfo {
  const t = (TASKS as Record<string, TaskInfo>)[name];
  if (!t) throw new RangeError(`unknown task "${name}": one of ${TASK_NAMES.join(', ')}`);
  return t;
}
