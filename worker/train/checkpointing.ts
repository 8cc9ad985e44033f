// Checkpoints of a replica: parameters and σReparam buffers (model.safetensors), optimizer and EMA slots
// (optimizer.safetensors), and step / digest / config / architecture (state.json), under <runDir>/checkpoints —
// written from and read into the named TrainState (snapshot.ts).
import { join } from 'node:path';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { writeCheckpoint, latestCheckpoint, listCheckpoints, readCheckpoint, type CheckpointData, type CheckpointWriter, type NamedArray } from '../../shared/checkpoint/store.js';
import { parseSlotKey } from '../optim/optimizer.js';
import type { Trainer } from './trainer.js';
import type { PlateauState } from '../optim/plateau.js';
import { fromNamed, toNamed } from './snapshot.js';
import { DIGEST_ZERO } from './digest.js';

export function checkpointDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** Copies the replica out (one packed readback per group; the step goes on while a writer serialises it). */
export async function checkpointData(trainer: Trainer, config: Readonly<Config>, extra: Record<string, unknown> = {}): Promise<CheckpointData> {
  const s = trainer.state;
  const named = await toNamed(trainer);
  const model = new Map<string, NamedArray>();
  for (const [n, arr] of named.model) model.set(n, { shape: s.shapes.get(n)!, data: arr });
  const optimizer = new Map<string, NamedArray>();
  for (const [k, arr] of named.slots) optimizer.set(k, { shape: s.shapes.get(parseSlotKey(k).param)!, data: arr });
  return {
    model,
    optimizer,
    state: {
      step: named.step,
      task: config.task,
      optimizer: trainer.optimizer.name,
      adamStep: named.optimizerStep,
      emaUpdates: named.emaUpdates,
      digest: named.digest,
      architecture: trainer.model.architecture(),
      config,
      // Linear weights are stored [in, out] (y = x W + b): transpose them for torch.nn.Linear's [out, in].
      weightLayout: 'in_out',
      ...(named.plateau ? { plateau: named.plateau } : {}),
      ...extra,
    },
  };
}

export async function saveCheckpoint(
  trainer: Trainer,
  runDir: string,
  config: Readonly<Config>,
  extra: Record<string, unknown> = {},
  writer?: CheckpointWriter,
): Promise<string> {
  const data = await checkpointData(trainer, config, extra);
  if (writer) {
    writer.enqueue(data);
    return join(checkpointDir(runDir), `(queued step ${data.state.step})`);
  }
  return writeCheckpoint(checkpointDir(runDir), data, { keep: config.checkpoint.keep });
}

/** Restores the newest complete checkpoint into the trainer; refuses another architecture. Returns its path. */
export async function loadLatestCheckpoint(trainer: Trainer, runDir: string): Promise<string | undefined> {
  const path = await latestCheckpoint(checkpointDir(runDir));
  if (!path) return undefined;
  return loadCheckpoint(trainer, path);
}

/** A rollback: restores the latest checkpoint at or before `step`. */
export async function loadCheckpointAtOrBefore(trainer: Trainer, runDir: string, step: number): Promise<string> {
  const found = (await listCheckpoints(checkpointDir(runDir))).filter((c) => c.step <= step).at(-1);
  if (!found) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `rollback: no checkpoint at or before step ${step} in ${checkpointDir(runDir)}; checkpoint more often (checkpoint.everySteps) or keep more (checkpoint.keep ≥ 2)`);
  }
  return loadCheckpoint(trainer, found.path);
}

async function loadCheckpoint(trainer: Trainer, path: string): Promise<string> {
  const data = await readCheckpoint(path);
  const saved = JSON.stringify(data.state.architecture);
  const ours = JSON.stringify(trainer.model.architecture());
  if (saved !== ours) {
    throw new SigmaError(
      'SGT_CHECKPOINT_INVALID',
      `checkpoint ${path} holds another architecture (${saved}) than this run's model config (${ours}): use the same model.* settings, or a fresh --run-dir`,
    );
  }
  const model = new Map<string, Float32Array>();
  for (const [n, a] of data.model) model.set(n, a.data);
  const known = new Set(trainer.state.shapes.keys());
  for (const n of model.keys()) if (!known.has(n)) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} holds unknown tensor ${n}`);
  for (const n of known) if (!model.has(n)) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} lacks tensor ${n}`);
  const savedOptimizer = String(data.state.optimizer ?? 'adamw');
  if (savedOptimizer !== trainer.optimizer.name) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} was written by optimizer ${savedOptimizer}, this run uses ${trainer.optimizer.name} (optim.name)`);
  }
  const slots = new Map<string, Float32Array>();
  for (const [k, a] of data.optimizer) slots.set(k, a.data);
  if (trainer.ema && ![...slots.keys()].some((k) => parseSlotKey(k).slot === 'e')) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} holds no EMA weights but optim.emaDecay is set`);
  }
  let plateau: PlateauState | null = null;
  if (trainer.plateau) {
    if (data.state.plateau === undefined) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} holds no plateau schedule state but optim.schedule is plateau`);
    plateau = data.state.plateau as PlateauState;
  }
  fromNamed(trainer, {
    plateau,
    model, slots, step: data.state.step, optimizerStep: Number(data.state.adamStep ?? data.state.step),
    emaUpdates: data.state.emaUpdates === null || data.state.emaUpdates === undefined ? null : Number(data.state.emaUpdates),
    digest: typeof data.state.digest === 'string' ? data.state.digest : DIGEST_ZERO,
  });
  return path;
}
