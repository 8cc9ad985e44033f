// The node agent: spawns one worker process per local slot (GPU or core), pins GPUs with CUDA_VISIBLE_DEVICES,
// restarts a worker that dies (it rejoins at a step boundary), and forwards SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { EXIT_INPUT_ERROR } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { RING_MALLOC_ENV } from '../worker/comm/ring.js';

export interface LaunchOptions {
  nproc: number;
  /** HOST:PORT of the coordinator. */
  coordinator: string;
  /** Prefix of this node's worker ids (`<node>-<localRank>`). */
  nodeName: string;
  /** Config file and config-key flags, passed to every worker unchanged. */
  configArgs: string[];
  /** GPU ids to pin one per worker, or undefined for CPU workers. */
  gpus?: string[];
  maxRestarts: number;
  /** Extra environment for the workers. */
  env?: NodeJS.ProcessEnv;
  /** Where the workers' output lines go (`run` on a terminal: above the progress bar); default: inherited stdout/stderr. */
  output?: (line: string) => void;
  /** Called once when every worker has ended for good while nobody asked them to stop (`run` then ends the job). */
  onAllGone?: (why: string) => void;
}

interface Slot {
  localRank: number;
  child: ChildProcess | undefined;
  restarts: number;
  exited: Promise<number>;
}

const CLI = fileURLToPath(new URL('./cli/index.js', import.meta.url));

export class Launcher {
  private readonly slots: Slot[] = [];
  private stopping = false;
  /** Exit codes of workers that ended for good, by local rank. */
  readonly exitCodes = new Map<number, number>();

  constructor(
    private readonly o: LaunchOptions,
    private readonly log: Logger,
  ) {
    if (o.gpus && o.gpus.length < o.nproc) {
      throw new Error(`--nproc-per-node ${o.nproc} needs ${o.nproc} GPUs, got ${o.gpus.length} (${o.gpus.join(',')})`);
    }
  }

  start(): void {
    for (let r = 0; r < this.o.nproc; r++) {
      const slot: Slot = { localRank: r, child: undefined, restarts: 0, exited: Promise.resolve(0) };
      this.slots.push(slot);
      this.spawn(slot);
    }
  }

  private spawn(slot: Slot): void {
    const workerId = `${this.o.nodeName}-${slot.localRank}`;
    const env: NodeJS.ProcessEnv = { ...RING_MALLOC_ENV, ...process.env, ...this.o.env };
    if (this.o.gpus) env.CUDA_VISIBLE_DEVICES = this.o.gpus[slot.localRank];
    env.SGT_LAUNCHER_PID = String(process.pid); // workers exit if their launcher dies (no orphans)
    const args = [CLI, 'worker', ...this.o.configArgs, '--coordinator', this.o.coordinator, '--worker-id', workerId, '--local-rank', String(slot.localRank)];
    // Own process group: a terminal's Ctrl-C reaches the launcher, which stops the job in order.
    const output = this.o.output;
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', output ? 'pipe' : 'inherit', output ? 'pipe' : 'inherit'], detached: true });
    if (output) for (const s of [child.stdout!, child.stderr!]) createInterface({ input: s, crlfDelay: Infinity }).on('line', output);
    slot.child = child;
    this.log.info({ workerId, pid: child.pid, gpu: env.CUDA_VISIBLE_DEVICES }, `started worker ${workerId} (pid ${child.pid})`);
    slot.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        const status = code ?? (signal ? 128 : 1);
        slot.child = undefined;
        if (status === EXIT_INPUT_ERROR && !this.stopping) {
          this.log.error({ workerId, code }, `worker ${workerId} stopped on bad input (exit ${EXIT_INPUT_ERROR}, its message is above): not restarting it, it would fail the same way`);
        } else if (status !== 0 && !this.stopping && slot.restarts < this.o.maxRestarts) {
          slot.restarts += 1;
          this.log.warn({ workerId, code, signal, restart: slot.restarts }, `worker ${workerId} died (${signal ?? code}); restarting (${slot.restarts}/${this.o.maxRestarts})`);
          setTimeout(() => {
            if (!this.stopping) this.spawn(slot);
            resolve(slot.exited as unknown as number);
          }, 500);
          return;
        }
        this.exitCodes.set(slot.localRank, status);
        resolve(status);
        this.checkAllGone();
      });
    });
  }

  private checkAllGone(): void {
    if (this.stopping || this.exitCodes.size < this.slots.length || !this.o.onAllGone) return;
    const failed = [...this.exitCodes].filter(([, c]) => c !== 0).sort(([a], [b]) => a - b);
    if (failed.length === 0) return;
    const input = failed.some(([, c]) => c === EXIT_INPUT_ERROR);
    this.o.onAllGone(`every worker of ${this.o.nodeName} has exited (${failed.map(([r, c]) => `${this.o.nodeName}-${r}: exit ${c}`).join(', ')})` +
      (input ? ': bad input, see the worker\'s message above' : `, restarts used up (--max-restarts ${this.o.maxRestarts})`));
  }

  /**
   * Resolves when every worker has ended for good: EXIT_INPUT_ERROR when any worker stopped on bad input (what a
   * supervisor such as a Job's podFailurePolicy keys on: restarting cannot help), else the worst exit code.
   */
  async wait(): Promise<number> {
    let worst = 0;
    let input = false;
    for (const s of this.slots) {
      let code = await s.exited;
      while (s.child) code = await s.exited; // a restart replaced the promise
      worst = Math.max(worst, code);
      input ||= code === EXIT_INPUT_ERROR;
    }
    return input ? EXIT_INPUT_ERROR : worst;
  }

  /** Forwards a signal to every worker and stops restarting them. */
  signal(sig: NodeJS.Signals): void {
    this.stopping = true;
    for (const s of this.slots) s.child?.kill(sig);
  }

  /** The worker processes now running (for tests and status). */
  pids(): number[] {
    return this.slots.map((s) => s.child?.pid).filter((p): p is number => p !== undefined);
  }
}
