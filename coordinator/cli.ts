#!/usr/bin/env node
// sigmatrain command line: reads argv and env, loads the config once, and calls one function per subcommand.
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, type Config } from '../shared/config/index.js';
import { createLogger, type Logger } from '../shared/log.js';
import { SigmaError } from '../shared/errors.js';
import { resultText } from '../shared/summary.js';

const USAGE = `usage: sigmatrain <command> [options] [--<config.key> value ...]

commands:
  run --workers N               coordinator + N local workers on this machine (the usual way)
  train                         train in one process, no coordinator (--run-dir, --resume auto, /metrics too)
  coordinator [--workers N]     the job's coordinator (expects N workers; WORLD_SIZE is an alias)
  launch --nproc-per-node N     start and supervise N workers on this machine (one per GPU with --gpus)
  worker                        one worker (normally started by launch/run)
  ctl set-temperature TAU       set the attention temperature of a running job (at the next common step boundary)
  report RUN_DIR                write RUN_DIR/report.html (charts) and report.md from the run's own logs
  bleu REF [REF2 ...] < HYP     corpus BLEU as sacreBLEU 2.6.0 (-b): --tokenize 13a|intl|char|none, --lowercase, --chrf

options:
  --config FILE                 YAML or JSON config (see configs/)
  --run-dir DIR                 checkpoints, ledger and logs of the run (default runs/<config name>/<timestamp>)
  --resume auto|never           continue the job in --run-dir from its latest checkpoint (default never)
  --coordinator HOST:PORT       where the coordinator listens (default dist.coordinator; MASTER_ADDR:MASTER_PORT alias)
  --gpus all|0,1,...            pin one worker per GPU (CUDA_VISIBLE_DEVICES)
  --node-rank R                 this node's index (RANK / JOB_COMPLETION_INDEX are aliases)
  --max-restarts N              restarts of a dying worker by launch/run (default 3)
  --after-finish exit|serve     coordinator: once the job is complete, exit (default) or keep /metrics and the
                                control port up until SIGTERM, telling late workers the job is done (Kubernetes)
  --worker-id ID, --local-rank R  worker: its id in the job and local rank (ports = bases + R); launch sets both
  --node-name NAME              launch: the node's name in its workers' ids (default node<rank> or the host name)

Every config key can be set with --<key> value (e.g. --train.epochs 3) or SIGMATRAIN_<KEY> (e.g. SIGMATRAIN_TRAIN_EPOCHS=3).`;

const CLI_FLAGS = new Set([
  'config', 'run-dir', 'resume', 'workers', 'nproc-per-node', 'coordinator', 'gpus', 'node-rank', 'worker-id', 'local-rank', 'max-restarts', 'node-name', 'after-finish',
]);

export interface ParsedArgs {
  command?: string;
  help: boolean;
  flags: Map<string, string>;
  /** Config-key flags, passed to loadConfig (and to spawned workers). */
  configArgs: string[];
}

export function parseArgs(argv: string[]): ParsedArgs {
  const [command, ...args] = argv;
  const flags = new Map<string, string>();
  const configArgs: string[] = [];
  let help = !command || command === '--help' || command === '-h' || command === 'help';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (!a.startsWith('--')) throw new SigmaError('SGT_CLI_USAGE', `unexpected argument "${a}": options are --name value`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new SigmaError('SGT_CLI_USAGE', `--${name} needs a value`);
    if (CLI_FLAGS.has(name)) flags.set(name, value);
    else configArgs.push(`--${name}`, value);
  }
  return { command: help && (!command || command.startsWith('-') || command === 'help') ? undefined : command, help, flags, configArgs };
}

/**
 * An integer flag ≥ `min` (1 for counts of processes, 0 for ranks and restarts); `fallback` (when the flag is absent)
 * is checked the same way and named by `fallbackName` (an environment variable such as WORLD_SIZE).
 */
function intFlag(p: ParsedArgs, name: string, opts: { min: 0 | 1; fallback?: number | string; fallbackName?: string }): number {
  const v = p.flags.get(name) ?? opts.fallback;
  if (v === undefined) throw new SigmaError('SGT_CLI_USAGE', `--${name} is required`);
  const n = Number(v);
  if (String(v).trim() === '' || !Number.isSafeInteger(n) || n < opts.min) {
    const what = opts.min === 1 ? 'a positive integer (≥ 1)' : 'a non-negative integer';
    const which = p.flags.has(name) || !opts.fallbackName ? `--${name}` : `${opts.fallbackName} (the default of --${name})`;
    throw new SigmaError('SGT_CLI_USAGE', `${which} must be ${what}, got "${v}"`);
  }
  return n;
}

/** The job's expected worker count against dist.minWorkers: fewer could never form a generation (it would wait forever). */
function checkWorkers(workers: number, config: Readonly<Config>, flag: string): void {
  if (workers < config.dist.minWorkers) {
    throw new SigmaError('SGT_CLI_USAGE', `${flag} ${workers} is fewer than dist.minWorkers ${config.dist.minWorkers}: no generation could form; start at least ${config.dist.minWorkers} workers or lower dist.minWorkers`);
  }
}

/** torchrun / Kubeflow environment variables as aliases of our settings. */
function aliasEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  const addr = env.MASTER_ADDR ?? env.PET_MASTER_ADDR;
  const port = env.MASTER_PORT ?? env.PET_MASTER_PORT;
  if (addr && !out.SIGMATRAIN_DIST_COORDINATOR) out.SIGMATRAIN_DIST_COORDINATOR = `${addr}:${port ?? 29400}`;
  return out;
}

function load(p: ParsedArgs): Readonly<Config> {
  const env = aliasEnv(process.env);
  const coordinatorFlag = p.flags.get('coordinator');
  const args = [...p.configArgs];
  if (coordinatorFlag) {
    // --coordinator wins over a --dist.coordinator passed through to a worker.
    const i = args.indexOf('--dist.coordinator');
    if (i >= 0) args.splice(i, 2);
    args.push('--dist.coordinator', coordinatorFlag);
  }
  return loadConfig({ file: p.flags.get('config'), args, env });
}

/** --run-dir, or a fresh runs/<config name>/<UTC timestamp> (resuming needs the explicit directory). */
function runDirOf(p: ParsedArgs): string {
  const dir = p.flags.get('run-dir');
  if (dir) return resolve(dir);
  if (p.flags.get('resume') === 'auto') throw new SigmaError('SGT_CLI_USAGE', '--resume auto needs --run-dir DIR (the run to continue)');
  const name = (p.flags.get('config') ?? 'default').replace(/^.*\//, '').replace(/\.(ya?ml|json)$/, '');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return resolve('runs', name, stamp);
}

function afterFinishOf(p: ParsedArgs): 'exit' | 'serve' {
  const a = p.flags.get('after-finish') ?? 'exit';
  if (a !== 'exit' && a !== 'serve') throw new SigmaError('SGT_CLI_USAGE', `--after-finish must be exit or serve, got "${a}"`);
  return a;
}

function resumeOf(p: ParsedArgs): 'auto' | 'never' {
  const r = p.flags.get('resume') ?? 'never';
  if (r !== 'auto' && r !== 'never') throw new SigmaError('SGT_CLI_USAGE', `--resume must be auto or never, got "${r}"`);
  return r;
}

/** GPU indices this machine has, from nvidia-smi. */
function detectGpus(): string[] {
  const r = spawnSync('nvidia-smi', ['--query-gpu=index', '--format=csv,noheader'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new SigmaError('SGT_CLI_USAGE', `--gpus all: nvidia-smi found no GPUs here (${r.error?.message ?? r.stderr.trim()}); list them (--gpus 0,1) or leave --gpus out for CPU workers`);
  }
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => /^\d+$/.test(l));
}

function gpusOf(p: ParsedArgs): string[] | undefined {
  const g = p.flags.get('gpus');
  if (!g) return undefined;
  if (g === 'all') return detectGpus();
  const ids = g.split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d+$/.test(s))) throw new SigmaError('SGT_CLI_USAGE', `--gpus must be "all" or a list like 0,1,2, got "${g}"`);
  return ids;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new SigmaError('SGT_CONFIG_INVALID', `dist.coordinator must be HOST:PORT, got "${addr}"`);
  return { host: m[1], port: Number(m[2]) };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

/** The config-file and config-key flags a spawned worker needs to load the same config. */
function passThrough(p: ParsedArgs): string[] {
  const cfg = p.flags.get('config');
  return [...(cfg ? ['--config', resolve(cfg)] : []), ...p.configArgs];
}

function nodeName(p: ParsedArgs): string {
  const explicit = p.flags.get('node-name');
  if (explicit) return explicit;
  const sources = [['--node-rank', p.flags.get('node-rank')], ['JOB_COMPLETION_INDEX', process.env.JOB_COMPLETION_INDEX], ['RANK', process.env.RANK], ['PET_NODE_RANK', process.env.PET_NODE_RANK]] as const;
  const given = sources.find(([, v]) => v !== undefined);
  if (!given) return hostname();
  if (!/^\d+$/.test(given[1]!)) throw new SigmaError('SGT_CLI_USAGE', `${given[0]} must be a non-negative integer (the node's index), got "${given[1]}"`);
  return `node${Number(given[1])}`;
}

async function runCoordinator(config: Readonly<Config>, p: ParsedArgs, log: Logger, expect: number, terminal?: import('./terminal.js').Terminal) {
  const { Coordinator } = await import('./coordinator.js');
  const { port } = splitHostPort(config.dist.coordinator);
  const c = new Coordinator(config, { bind: `tcp://*:${port}`, runDir: runDirOf(p), expectWorkers: expect, resume: resumeOf(p), afterFinish: afterFinishOf(p), terminal }, log);
  if (config.metrics.enabled) await c.serveMetrics(config.metrics.host, config.metrics.port);
  return c;
}

function printSummary(log: Logger, s: import('./coordinator.js').JobSummary): void {
  log.info(
    { summary: s },
    `${s.stoppedEarly ? 'stopped' : 'done'}: ${s.steps}/${s.totalSteps} steps in ${s.seconds.toFixed(1)} s (${s.samplesPerSecond.toFixed(1)} samples/s), ` +
      `${s.generations} generation(s), ${s.workerFailures} worker failure(s); ${resultText(s)}`,
  );
}

/** `sigmatrain ctl set-temperature 0.1 [--coordinator HOST:PORT] [--config F]`. */
async function ctl(argv: string[]): Promise<number> {
  const [verb, value, ...rest] = argv;
  if (verb !== 'set-temperature' || value === undefined) throw new SigmaError('SGT_CLI_USAGE', 'usage: sigmatrain ctl set-temperature TAU [--coordinator HOST:PORT]');
  const tau = Number(value);
  if (!Number.isFinite(tau) || tau <= 0) throw new SigmaError('SGT_CLI_USAGE', `temperature must be a positive number, got "${value}"`);
  const p = parseArgs(['ctl', ...rest]);
  const config = load(p);
  const { Dealer } = await import('zeromq');
  const { encode, decode } = await import('../shared/protocol/index.js');
  const d = new Dealer({ receiveTimeout: 10_000, linger: 0 });
  d.connect(`tcp://${config.dist.coordinator}`);
  try {
    await d.send(encode({ type: 'ctl.set-temperature', value: tau }));
    const [frame] = await d.receive();
    const r = decode(frame);
    if (!r.ok) throw new SigmaError('SGT_PROTOCOL', `bad reply from the coordinator: ${r.error}`);
    if (r.msg.type === 'error') throw new SigmaError('SGT_PROTOCOL', `coordinator refused: ${r.msg.message}`);
    if (r.msg.type !== 'ctl.ok') throw new SigmaError('SGT_PROTOCOL', `unexpected reply ${r.msg.type}`);
    console.log(r.msg.message);
    return 0;
  } catch (e) {
    if ((e as { code?: string }).code === 'EAGAIN') throw new SigmaError('SGT_PROTOCOL', `no answer from a coordinator at ${config.dist.coordinator} within 10 s: is the job running (--coordinator HOST:PORT)?`);
    throw e;
  } finally {
    d.close();
  }
}

/** Writes the run report; failures to write it never fail the job that produced the run. */
async function report(runDir: string, log: Logger): Promise<void> {
  try {
    const { writeReport } = await import('./report.js');
    const r = await writeReport(runDir);
    log.info({ html: r.html, markdown: r.markdown }, `report: ${r.html}`);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'run report not written');
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'ctl') return ctl(argv.slice(1));
  if (argv[0] === 'bleu') return (await import('./commands/bleu.js')).bleuCommand(argv.slice(1), process.stdin, process.stdout, process.stderr);
  if (argv[0] === 'report') {
    if (!argv[1] || argv[1].startsWith('-')) throw new SigmaError('SGT_CLI_USAGE', 'usage: sigmatrain report RUN_DIR');
    const { writeReport } = await import('./report.js');
    const r = await writeReport(resolve(argv[1]));
    console.log(`${r.html}\n${r.markdown}`);
    return 0;
  }
  const p = parseArgs(argv);
  if (p.help || !p.command) {
    console.log(USAGE);
    return p.help ? 0 : 2;
  }
  switch (p.command) {
    case 'train': {
      const config = load(p);
      const log = createLogger({ role: 'worker', level: config.log.level });
      const { trainLocal } = await import('../worker/train/local.js');
      let stop = false;
      for (const sig of ['SIGTERM', 'SIGINT'] as const) {
        process.on(sig, () => {
          stop = true;
        });
      }
      const runDir = runDirOf(p);
      log.info({ runDir }, `run dir ${runDir}`);
      const s = await trainLocal(config, log, { runDir, resume: resumeOf(p), stopRequested: () => stop });
      log.info(
        { summary: s },
        `${s.stoppedEarly ? 'stopped' : 'done'}: ${s.steps} steps, ${s.epochs} epochs in ${s.seconds.toFixed(1)} s (${s.samplesPerSecond.toFixed(1)} samples/s, ${s.backend}); ${resultText(s)}`,
      );
      return 0;
    }
    case 'coordinator': {
      const config = load(p);
      const log = createLogger({ role: 'coordinator', level: config.log.level });
      const envName = process.env.WORLD_SIZE !== undefined ? 'WORLD_SIZE' : process.env.PET_NNODES !== undefined ? 'PET_NNODES' : undefined;
      const expect = intFlag(p, 'workers', { min: 1, fallback: envName ? process.env[envName] : config.dist.minWorkers, fallbackName: envName });
      checkWorkers(expect, config, p.flags.has('workers') ? '--workers' : envName ?? 'dist.minWorkers');
      const c = await runCoordinator(config, p, log, expect);
      for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => c.requestStop(`${sig} received`));
      const s = await c.run();
      printSummary(log, s);
      await report(c.runDir, log);
      if (afterFinishOf(p) === 'serve' && !s.stoppedEarly) await c.serveFinished();
      return 0;
    }
    case 'worker': {
      const config = load(p);
      const workerId = p.flags.get('worker-id') ?? `${hostname()}-${process.pid}`;
      const localRank = intFlag(p, 'local-rank', { min: 0, fallback: 0 });
      const log = createLogger({ role: 'worker', level: config.log.level }).child({ workerId });
      const { host } = splitHostPort(config.dist.coordinator);
      const transport = config.dist.transport === 'auto' ? (isLoopback(host) ? 'ipc' : 'tcp') : config.dist.transport;
      const port = config.dist.ringPortBase + localRank;
      const ipc = `ipc://${join(tmpdir(), `sigmatrain-${process.pid}-${workerId.replace(/[^A-Za-z0-9_.-]/g, '_')}.sock`)}`;
      const { Worker } = await import('../worker/runtime.js');
      const w = new Worker(config, {
        workerId,
        coordinator: `tcp://${config.dist.coordinator}`,
        ringEndpoint: transport === 'ipc' ? ipc : `tcp://${config.dist.ringHost}:${port}`,
        ringListen: transport === 'ipc' ? ipc : `tcp://0.0.0.0:${port}`,
        // Coordinator on the base port, worker with local rank r on base + 1 + r (deploy/prometheus/prometheus.yml).
        metricsPort: config.metrics.enabled ? (config.metrics.port === 0 ? 0 : config.metrics.port + 1 + localRank) : undefined,
      }, log);
      for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => w.terminate());
      return w.run();
    }
    case 'launch': {
      const config = load(p);
      const log = createLogger({ role: 'launcher', level: config.log.level });
      const nproc = intFlag(p, 'nproc-per-node', { min: 1 });
      const { Launcher } = await import('./launch.js');
      const l = new Launcher({ nproc, coordinator: config.dist.coordinator, nodeName: nodeName(p), configArgs: passThrough(p), gpus: gpusOf(p), maxRestarts: intFlag(p, 'max-restarts', { min: 0, fallback: 3 }) }, log);
      for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => l.signal('SIGTERM'));
      l.start();
      return l.wait();
    }
    case 'run': {
      const config = load(p);
      const gpus = gpusOf(p);
      const workers = intFlag(p, 'workers', { min: 1, fallback: gpus?.length ?? 2 });
      checkWorkers(workers, config, '--workers');
      // On a terminal one writer owns it: our log and the workers' (NDJSON through pipes) print one line per record
      // above the progress bar. Off a terminal: NDJSON on stdout, workers' straight through.
      const { Terminal } = await import('./terminal.js');
      const terminal = process.stdout.isTTY && process.stderr.isTTY ? new Terminal() : undefined;
      const log = createLogger({ role: 'coordinator', level: config.log.level, ...(terminal ? { destination: terminal.stream() } : {}) });
      const c = await runCoordinator(config, p, log, workers, terminal);
      const { Launcher } = await import('./launch.js');
      const l = new Launcher({
        nproc: workers, coordinator: config.dist.coordinator, nodeName: 'local', configArgs: passThrough(p), gpus, maxRestarts: intFlag(p, 'max-restarts', { min: 0, fallback: 3 }),
        ...(terminal ? { output: (line: string) => terminal.line(line) } : {}),
      }, log);
      for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => c.requestStop(`${sig} received`));
      const job = c.run();
      if (!c.finishedBefore) l.start();
      const s = await job;
      // Workers leave on the coordinator's stop; any still there after a grace period are told to go.
      const grace = setTimeout(() => l.signal('SIGTERM'), 15_000);
      const code = await l.wait();
      clearTimeout(grace);
      printSummary(log, s);
      await report(c.runDir, log);
      return code;
    }
    default:
      throw new SigmaError('SGT_CLI_USAGE', `unknown command "${p.command}"; run "sigmatrain --help"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error;
    console.error(e instanceof SigmaError ? e.message : e.stack ?? String(e));
    process.exit(1);
  },
);
