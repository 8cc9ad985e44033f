// Checkpoints of a replica: parameters and σReparam buffers (model.safetensors), AdamW moments
// (optimizer.safetensors), and step / config / architecture (state.json), under <runDir>/checkpoints.
import { join } from 'node:path';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { writeCheckpoint, latestCheckpoint, listCheckpoints, readCheckpoint, type CheckpointData, type CheckpointWriter, type NamedArray } from '../../shared/checkpoint/store.js';
import { architectureOf } from '../models/index.js';
import type { Trainer } from './trainer.js';

export function checkpointDir(runDir: string): string {
  return join(runDir, 'checkpoints');
}

/** Copies the replica out (synchronously, so the step can go on while a writer serialises it). */
export function checkpointData(trainer: Trainer, config: Readonly<Config>, extra: Record<string, unknown> = {}): CheckpointData {
  const s = trainer.state;
  const model = new Map<string, NamedArray>();
  for (const [n, arr] of s.snapshot()) model.set(n, { shape: s.shapes.get(n)!, data: arr });
  const opt = trainer.optimizer.getState();
  const ema = trainer.ema?.getState();
  const optimizer = new Map<string, NamedArray>();
  for (const [k, arr] of [...opt.slots, ...(ema?.slots ?? [])]) optimizer.set(k, { shape: s.shapes.get(k.slice(2))!, data: arr });
  return {
    model,
    optimizer,
    state: {
      step: trainer.step,
      optimizer: trainer.optimizer.name,
      adamStep: opt.step,
      emaUpdates: ema?.step ?? null,
      architecture: architectureOf(config),
      config,
      // Linear weights are stored [in, out] (y = x W + b): transpose them for torch.nn.Linear's [out, in].
      weightLayout: 'in_out',
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
  const data = checkpointData(trainer, config, extra);
  if (writer) {
    writer.enqueue(data);
    return join(checkpointDir(runDir), `(queued step ${trainer.step})`);
  }
  return writeCheckpoint(checkpointDir(runDir), data, { keep: config.checkpoint.keep });
}

/** Restores the newest complete checkpoint into the trainer; refuses another architecture. Returns its path. */
export async function loadLatestCheckpoint(trainer: Trainer, runDir: string, config: Readonly<Config>): Promise<string | undefined> {
  const path = await latestCheckpoint(checkpointDir(runDir));
  if (!path) return undefined;
  return loadCheckpoint(trainer, path, config);
}

/** A rollback: restores the latest checkpoint at or before `step`. */
export async function loadCheckpointAtOrBefore(trainer: Trainer, runDir: string, config: Readonly<Config>, step: number): Promise<string> {
  const found = (await listCheckpoints(checkpointDir(runDir))).filter((c) => c.step <= step).at(-1);
  if (!found) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `rollback: no checkpoint at or before step ${step} in ${checkpointDir(runDir)}; checkpoint more often (checkpoint.everySteps) or keep more (checkpoint.keep ≥ 2)`);
  }
  return loadCheckpoint(trainer, found.path, config);
}

async function loadCheckpoint(trainer: Trainer, path: string, config: Readonly<Config>): Promise<string> {
  const data = await readCheckpoint(path);
  const saved = JSON.stringify(data.state.architecture);
  const ours = JSON.stringify(architectureOf(config));
  if (saved !== ours) {
    throw new SigmaError(
      'SGT_CHECKPOINT_INVALID',
      `checkpoint ${path} holds another architecture (${saved}) than this run's model config (${ours}): use the same model.* settings, or a fresh --run-dir`,
    );
  }
  const values = new Map<string, Float32Array>();
  for (const [n, a] of data.model) values.set(n, a.data);
  const known = new Set(trainer.state.shapes.keys());
  for (const n of values.keys()) if (!known.has(n)) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} holds unknown tensor ${n}`);
  for (const n of known) if (!values.has(n)) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} lacks tensor ${n}`);
  trainer.state.restore(values);
  const savedOptimizer = String(data.state.optimizer ?? 'adamw');
  if (savedOptimizer !== trainer.optimizer.name) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} was written by optimizer ${savedOptimizer}, this run uses ${trainer.optimizer.name} (optim.name)`);
  }
  const slots = new Map<string, Float32Array>();
  const emaSlots = new Map<string, Float32Array>();
  for (const [k, a] of data.optimizer) (k.startsWith('e/') ? emaSlots : slots).set(k, a.data);
  trainer.optimizer.setState({ step: Number(data.state.adamStep ?? data.state.step), slots }, trainer.state.shapes);
  if (trainer.ema) {
    if (emaSlots.size === 0) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} holds no EMA weights but optim.emaDecay is set`);
    trainer.ema.setState({ step: Number(data.state.emaUpdates ?? 0), slots: emaSlots }, trainer.state.shapes);
  }
  trainer.step = data.state.step;
  return path;
}
