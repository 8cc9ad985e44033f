// Runs one training job of an experiment the way a user does: `sigmatrain run --workers N` as a child process of the
// real CLI (coordinator + workers, ring all-reduce, metrics on ephemeral ports), its output kept in a log file.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/coordinator/cli/index.js (the sigmatrain bin) next to this compiled file. */
export const CLI = fileURLToPath(new URL('../cli/index.js', import.meta.url));

export interface JobSpec {
  /** Training config (YAML) every flag below overrides. */
  config: string;
  runDir: string;
  /** The CLI's combined stdout and stderr go here. */
  logFile: string;
  workers: number;
  /** `--key value` overrides, in this order (schema keys, e.g. 'optim.lr'). */
  flags: [string, string | number][];
  /** The job is stopped (SIGTERM, then SIGKILL after 15 s) after this long. */
  timeoutMs: number;
}

export interface JobResult {
  exitCode: number;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  timedOut: boolean;
  /** The log names SGT_NONFINITE_LOSS: the job stopped because the loss became NaN or ±∞. */
  nonFiniteLoss: boolean;
  /** The step the log's SGT_NONFINITE_LOSS message names, if it names one. */
  nonFiniteStep?: number;
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the coordinator binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no port from the OS'))));
    });
  });
}

/** The step number in "loss became NaN at step 123", the trainer's SGT_NONFINITE_LOSS message. */
export function nonFiniteStepOf(log: string): { found: boolean; step?: number } {
  if (!log.includes('SGT_NONFINITE_LOSS')) return { found: false };
  const m = /loss became \S+ at step (\d+)/.exec(log);
  return { found: true, step: m ? Number(m[1]) : undefined };
}

/** Spawns `sigmatrain run ...`, waits for it to exit and reads its log for a non-finite loss. */
export async function runJob(spec: JobSpec): Promise<JobResult> {
  await mkdir(spec.runDir, { recursive: true });
  await mkdir(dirname(spec.logFile), { recursive: true });
  const port = await freePort();
  const args = [
    CLI, 'run', '--config', spec.config, '--workers', String(spec.workers), '--run-dir', spec.runDir,
    '--dist.coordinator', `127.0.0.1:${port}`, '--metrics.port', '0',
    ...spec.flags.flatMap(([k, v]) => [`--${k}`, String(v)]),
  ];
  const out = createWriteStream(spec.logFile);
  out.write(`# ${process.execPath} ${args.join(' ')}\n`);
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  let timedOut = false;
  let kill: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
  }, spec.timeoutMs);
  const exitCode = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  clearTimeout(timer);
  if (kill) clearTimeout(kill);
  await new Promise<void>((resolve) => out.end(resolve));
  const seconds = (performance.now() - t0) / 1000;
  const log = await readFile(spec.logFile, 'utf8');
  const nf = nonFiniteStepOf(log);
  return { exitCode, seconds, timedOut, nonFiniteLoss: nf.found, nonFiniteStep: nf.step };
}
