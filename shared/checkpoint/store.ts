// Checkpoint directories (<dir>/ckpt-<step, 9 digits>/ with model and optimizer safetensors plus state.json), written
// atomically (temp dir, fsync, rename), listed, pruned to the last K, verified by sha256 on read; and a background writer.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SigmaError } from '../errors.js';
import { decodeSafetensors, writeSafetensors, type TensorInput, type WrittenFile } from './safetensors.js';

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

export interface CheckpointData {
  /** Parameters and buffers (σReparam u/v included) by name. */
  model: Map<string, NamedArray>;
  /** Optimizer slots by name (e.g. "adam.m/<param>"). */
  optimizer: Map<string, NamedArray>;
  /** The caller's JSON state (epoch, generation, config, architecture fingerprint, ledger summary, RNG...), stored verbatim. */
  state: Record<string, unknown> & { step: number };
}

export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const CHECKPOINT_FORMAT = 'sigmatrain-checkpoint/1';

const NAME_RE = /^ckpt-(\d{9,})$/;
/** Sibling directories in flight or left over; listing never looks at dot-names. */
const TEMP_PREFIX = '.tmp-ckpt-'; // being written
const OLD_PREFIX = '.old-ckpt-'; // a same-step checkpoint moved aside while its replacement is renamed in
const DEL_PREFIX = '.del-ckpt-'; // pruned: renamed away first, so a half-deleted checkpoint is never listed

/** state.json as written: our bookkeeping around the caller's state. */
interface StateFile {
  format: string;
  step: number;
  writtenAt: string;
  files: Record<string, { bytes: number; sha256: string }>;
  state: Record<string, unknown> & { step: number };
}

function invalid(message: string, cause?: unknown): never {
  throw new SigmaError('SGT_CHECKPOINT_INVALID', message, cause === undefined ? undefined : { cause });
}

export function checkpointName(step: number): string {
  return `ckpt-${String(step).padStart(9, '0')}`;
}

function tag(step: number): string {
  return `${String(step).padStart(9, '0')}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** fsync a directory so the names created or renamed in it survive a power loss. */
async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch (e) {
    // Some filesystems refuse fsync on a directory; there is nothing more we can do for them.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOTSUP') throw e;
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temp and moved-aside directories this process is using right now (never touched by housekeeping). */
const activeTemps = new Set<string>();

function toInputs(m: Map<string, NamedArray>): Map<string, TensorInput> {
  const out = new Map<string, TensorInput>();
  for (const [name, t] of m) {
    if (!(t.data instanceof Float32Array)) invalid(`tensor "${name}": checkpoints hold Float32Array data, got ${(t.data as object)?.constructor?.name}`);
    out.set(name, { shape: t.shape, data: t.data, dtype: 'F32' });
  }
  return out;
}

/**
 * Writes `data` as <dir>/ckpt-<step>/ and returns that path. Crash-safe: everything goes into a temp sibling that is
 * fsynced and renamed into place (the parent fsynced after), so a kill at any moment leaves the earlier checkpoints
 * whole and no partial one under a ckpt- name. A checkpoint of the same step is replaced (old moved aside, new
 * renamed in, old removed). Afterwards leftovers of dead writers are cleaned and `keep` checkpoints stay: the one
 * just written (even when older than the others, e.g. after a rollback) and the highest steps besides it.
 * The arrays are read while the promise is pending: do not mutate them until it settles. One writer per directory
 * (rank 0; CheckpointWriter serialises its own writes).
 */
export async function writeCheckpoint(dir: string, data: CheckpointData, opts: { keep: number }): Promise<string> {
  const step = data.state?.step;
  if (!Number.isSafeInteger(step) || step < 0) invalid(`state.step must be a non-negative integer, got ${JSON.stringify(step)}`);
  if (!Number.isInteger(opts.keep) || opts.keep < 1) invalid(`keep must be an integer ≥ 1, got ${JSON.stringify(opts.keep)}`);
  let stateText: string;
  try {
    stateText = JSON.stringify(data.state);
  } catch (e) {
    invalid(`checkpoint state for step ${step} is not JSON-serialisable (${(e as Error).message})`, e);
  }
  const model = toInputs(data.model);
  const optimizer = toInputs(data.optimizer);

  await mkdir(dir, { recursive: true });
  const temp = join(dir, TEMP_PREFIX + tag(step));
  const final = join(dir, checkpointName(step));
  let aside: string | undefined;
  activeTemps.add(temp);
  try {
    await mkdir(temp);
    const meta = { format: CHECKPOINT_FORMAT, step: String(step) };
    const files: Record<string, WrittenFile> = {
      [MODEL_FILE]: await writeSafetensors(join(temp, MODEL_FILE), model, { metadata: { ...meta, kind: 'model' } }),
      [OPTIMIZER_FILE]: await writeSafetensors(join(temp, OPTIMIZER_FILE), optimizer, { metadata: { ...meta, kind: 'optimizer' } }),
    };
    const record = `{"format":${JSON.stringify(CHECKPOINT_FORMAT)},"step":${step},"writtenAt":${JSON.stringify(new Date().toISOString())},` +
      `"files":${JSON.stringify(files)},"state":${stateText}}\n`;
    const fh = await open(join(temp, STATE_FILE), 'w');
    try {
      await fh.writeFile(record);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await syncDir(temp);

    if (await exists(final)) {
      aside = join(dir, OLD_PREFIX + tag(step));
      activeTemps.add(aside);
      await rename(final, aside);
    }
    await rename(temp, final);
    await syncDir(dir);
    if (aside) await rm(aside, { recursive: true, force: true });
  } catch (e) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    // Moved the old one aside but could not rename the new one in: put the old one back.
    if (aside && !(await exists(final).catch(() => true))) await rename(aside, final).catch(() => undefined);
    throw e;
  } finally {
    activeTemps.delete(temp);
    if (aside) activeTemps.delete(aside);
  }
  await housekeep(dir, step, opts.keep);
  return final;
}

/** Removes leftovers of writers that died, restores a moved-aside checkpoint whose replacement never arrived, prunes. */
async function housekeep(dir: string, justWritten: number, keep: number): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if (name.startsWith(TEMP_PREFIX) || name.startsWith(OLD_PREFIX)) {
      // <prefix><step>-<pid>-<random>: leave alone what this process, or another live one, is still working on.
      const pid = Number(name.split('-').at(-2));
      if (activeTemps.has(path) || (pid !== process.pid && Number.isInteger(pid) && processAlive(pid))) continue;
    }
    if (name.startsWith(TEMP_PREFIX)) {
      await rm(path, { recursive: true, force: true });
    } else if (name.startsWith(OLD_PREFIX)) {
      // A replace was killed between "move old aside" and "rename new in": the old one is complete; put it back.
      const step = Number(name.slice(OLD_PREFIX.length).split('-')[0]);
      const target = join(dir, checkpointName(step));
      if (Number.isSafeInteger(step) && !(await exists(target)) && (await isComplete(path, step))) {
        await rename(path, target);
        await syncDir(dir);
      } else {
        await rm(path, { recursive: true, force: true });
      }
    } else if (name.startsWith(DEL_PREFIX)) {
      await rm(path, { recursive: true, force: true });
    }
  }
  // Keep `keep` in all: the one just written plus the highest others.
  const others = (await listCheckpoints(dir)).filter((c) => c.step !== justWritten);
  const doomed = others.slice(0, Math.max(0, others.length - (keep - 1)));
  if (doomed.length === 0) return;
  const moved: string[] = [];
  for (const c of doomed) {
    const to = join(dir, DEL_PREFIX + tag(c.step));
    await rename(c.path, to);
    moved.push(to);
  }
  await syncDir(dir);
  for (const m of moved) await rm(m, { recursive: true, force: true });
}

async function readStateFile(ckpt: string): Promise<StateFile> {
  const file = join(ckpt, STATE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    invalid(`${file}: cannot be read (${(e as Error).message}); not a complete checkpoint`, e);
  }
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch (e) {
    invalid(`${file}: not valid JSON (${(e as Error).message})`, e);
  }
  const o = s as Partial<StateFile> | null;
  if (typeof o !== 'object' || o === null) invalid(`${file}: expected a JSON object`);
  if (o.format !== CHECKPOINT_FORMAT) invalid(`${file}: format ${JSON.stringify(o.format)} is not ${CHECKPOINT_FORMAT}`);
  if (!Number.isSafeInteger(o.step) || (o.step as number) < 0) invalid(`${file}: step ${JSON.stringify(o.step)} is not a non-negative integer`);
  if (typeof o.state !== 'object' || o.state === null || o.state.step !== o.step) {
    invalid(`${file}: "state" must be an object whose step equals ${o.step}`);
  }
  for (const f of [MODEL_FILE, OPTIMIZER_FILE]) {
    const rec = o.files?.[f];
    if (!rec || !Number.isSafeInteger(rec.bytes) || typeof rec.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(rec.sha256)) {
      invalid(`${file}: files["${f}"] must record {bytes, sha256}, got ${JSON.stringify(rec)}`);
    }
  }
  const m = NAME_RE.exec(basename(ckpt));
  if (m && Number(m[1]) !== o.step) invalid(`${file}: step ${o.step} does not match the directory name ${basename(ckpt)}`);
  return o as StateFile;
}

/** Cheap completeness check for listing: state.json is valid and the files have their recorded sizes (no hashing). */
async function isComplete(path: string, step: number): Promise<boolean> {
  try {
    const s = await readStateFile(path);
    if (s.step !== step) return false;
    for (const [f, rec] of Object.entries(s.files)) {
      if ((await stat(join(path, f))).size !== rec.bytes) return false;
    }
    return true;
  } catch {
    return false;
  }
}

const OLD_RE = /^\.old-ckpt-(\d{9,})-\d+-[0-9a-f]+$/;

/**
 * Complete checkpoints under `dir`, ascending by step; temp, pruned and incomplete directories are skipped. A step
 * whose replacement was interrupted after the old copy was moved aside is listed at its moved-aside path.
 */
export async function listCheckpoints(dir: string): Promise<{ path: string; step: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const candidates = names.flatMap((name) => {
    const m = NAME_RE.exec(name) ?? OLD_RE.exec(name);
    return m ? [{ path: join(dir, name), step: Number(m[1]), primary: name.startsWith('ckpt-') }] : [];
  });
  const ok = await Promise.all(candidates.map((c) => isComplete(c.path, c.step)));
  const byStep = new Map<number, { path: string; step: number; primary: boolean }>();
  candidates.forEach((c, i) => {
    if (ok[i] && (!byStep.has(c.step) || c.primary)) byStep.set(c.step, c);
  });
  return [...byStep.values()].map(({ path, step }) => ({ path, step })).sort((a, b) => a.step - b.step);
}

export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  return (await listCheckpoints(dir)).at(-1)?.path;
}

async function readTensors(ckpt: string, file: string, rec: { bytes: number; sha256: string }): Promise<Map<string, NamedArray>> {
  const path = join(ckpt, file);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    invalid(`${path}: cannot be read (${(e as Error).message})`, e);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== rec.sha256 || bytes.byteLength !== rec.bytes) {
    invalid(`${path}: sha256 ${sha} (${bytes.byteLength} bytes) does not match ${rec.sha256} (${rec.bytes} bytes) recorded in ${STATE_FILE}; the file is corrupt`);
  }
  const out = new Map<string, NamedArray>();
  for (const [name, t] of decodeSafetensors(bytes, path).tensors) {
    if (!(t.data instanceof Float32Array)) invalid(`${path}: tensor "${name}" is ${t.dtype}; checkpoints hold F32 only`);
    out.set(name, { shape: t.shape, data: t.data });
  }
  return out;
}

/** Reads a checkpoint directory, verifying both files against the sha256s in state.json. */
export async function readCheckpoint(path: string): Promise<CheckpointData> {
  const s = await readStateFile(path);
  const model = await readTensors(path, MODEL_FILE, s.files[MODEL_FILE]);
  const optimizer = await readTensors(path, OPTIMIZER_FILE, s.files[OPTIMIZER_FILE]);
  return { model, optimizer, state: s.state };
}

export interface CheckpointWriterOptions {
  keep: number;
  /** Called after each durable write (e.g. to observe checkpoint_duration_seconds or log the path). */
  onWritten?: (info: { path: string; step: number; seconds: number }) => void;
}

/**
 * Writes checkpoints off the training step's path: enqueue() returns at once; one write runs at a time; a checkpoint
 * enqueued while another is being written waits, and a newer one replaces it (only the newest pending is kept).
 * A failed background write is thrown by the next enqueue() or flush() (once). Enqueued arrays must not be mutated
 * afterwards (arrays from tfjs data()/dataSync() are fine: tensors are immutable).
 */
export class CheckpointWriter {
  private pending: CheckpointData | undefined;
  private running: Promise<void> | undefined;
  private failure: unknown;
  /** Checkpoints replaced by a newer one before they were written. */
  dropped = 0;
  written = 0;

  constructor(
    private readonly dir: string,
    private readonly opts: CheckpointWriterOptions,
  ) {}

  /** Queues `data`; throws the error of an earlier background write instead (then `data` is not queued). */
  enqueue(data: CheckpointData): void {
    this.surface();
    if (this.pending) this.dropped++;
    this.pending = data;
    this.running ??= this.drain();
  }

  /** Resolves when nothing is pending or being written; rejects with a background write's error. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    this.surface();
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  private surface(): void {
    if (this.failure !== undefined) {
      const e = this.failure;
      this.failure = undefined;
      throw e;
    }
  }

  private async drain(): Promise<void> {
    await Promise.resolve(); // start on a later tick: enqueue() returns before any file work
    try {
      while (this.pending) {
        const data = this.pending;
        this.pending = undefined;
        const t0 = performance.now();
        try {
          const path = await writeCheckpoint(this.dir, data, { keep: this.opts.keep });
          this.written++;
          this.opts.onWritten?.({ path, step: data.state.step, seconds: (performance.now() - t0) / 1000 });
        } catch (e) {
          this.failure ??= e; // keep the first; later pending writes still get their chance
        }
      }
    } finally {
      this.running = undefined;
    }
  }
}
