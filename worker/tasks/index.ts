// Task registry, looked up by the config's `task:` key (shared/tasks.ts lists the names, units and headlines).
import type { Config } from '../../shared/config/index.js';
import type { TaskName } from '../../shared/tasks.js';
import { SigmaError } from '../../shared/errors.js';
import { ClassifyTask } from './classify.js';
import { ReverseTask } from './reverse.js';
import type { Task, TaskBatch } from './task.js';

const TASKS: Record<TaskName, (config: Readonly<Config>) => Task<TaskBatch>> = {
  classify: (c) => new ClassifyTask(c) as unknown as Task<TaskBatch>,
  reverse: (c) => new ReverseTask(c) as unknown as Task<TaskBatch>,
};

/** The model family each task's data fits (its inputs and outputs). */
const FAMILY: Record<TaskName, Config['model']['family']> = { classify: 'vit', reverse: 'encoder' };

export function createTask(config: Readonly<Config>): Task<TaskBatch> {
  if (FAMILY[config.task] !== config.model.family) {
    throw new SigmaError('SGT_CONFIG_INVALID', `task ${config.task} needs model.family ${FAMILY[config.task]}, not ${config.model.family}: set model.family: ${FAMILY[config.task]}`);
  }
  return TASKS[config.task](config);
}

export type { Task, TaskBatch, TaskData } from './task.js';
