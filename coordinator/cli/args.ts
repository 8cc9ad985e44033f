// Command-line parsing shared by the subcommands: the CLI's own flags (everything else is a config key), their
// checks with messages naming the flag, torchrun/Kubeflow environment aliases, and loading the config once.
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { loadConfig, type Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';

export const CLI_FLAGS = new Set([
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
export function intFlag(p: ParsedArgs, name: string, opts: { min: 0 | 1; fallback?: number | string; fallbackName?: string }): number {
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
export function checkWorkers(workers: number, config: Readonly<Config>, flag: string): void {
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

export function load(p: ParsedArgs): Readonly<Config> {
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
export function runDirOf(p: ParsedArgs): string {
  const dir = p.flags.get('run-dir');
  if (dir) return resolve(dir);
  if (p.flags.get('resume') === 'auto') throw new SigmaError('SGT_CLI_USAGE', '--resume auto needs --run-dir DIR (the run to continue)');
  const name = (p.flags.get('config') ?? 'default').replace(/^.*\//, '').replace(/\.(ya?ml|json)$/, '');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return resolve('runs', name, stamp);
}

export function afterFinishOf(p: ParsedArgs): 'exit' | 'serve' {
  const a = p.flags.get('after-finish') ?? 'exit';
  if (a !== 'exit' && a !== 'serve') throw new SigmaError('SGT_CLI_USAGE', `--after-finish must be exit or serve, got "${a}"`);
  return a;
}

export function resumeOf(p: ParsedArgs): 'auto' | 'never' {
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

export function gpusOf(p: ParsedArgs): string[] | undefined {
  const g = p.flags.get('gpus');
  if (!g) return undefined;
  if (g === 'all') return detectGpus();
  const ids = g.split(',').map((s) => s.trim());
  if (ids.some((s) => !/^\d+$/.test(s))) throw new SigmaError('SGT_CLI_USAGE', `--gpus must be "all" or a list like 0,1,2, got "${g}"`);
  return ids;
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new SigmaError('SGT_CONFIG_INVALID', `dist.coordinator must be HOST:PORT, got "${addr}"`);
  return { host: m[1], port: Number(m[2]) };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1';
}

/** The config-file and config-key flags a spawned worker needs to load the same config. */
export function passThrough(p: ParsedArgs): string[] {
  const cfg = p.flags.get('config');
  return [...(cfg ? ['--config', resolve(cfg)] : []), ...p.configArgs];
}

export function nodeName(p: ParsedArgs): string {
  const explicit = p.flags.get('node-name');
  if (explicit) return explicit;
  const sources = [['--node-rank', p.flags.get('node-rank')], ['JOB_COMPLETION_INDEX', process.env.JOB_COMPLETION_INDEX], ['RANK', process.env.RANK], ['PET_NODE_RANK', process.env.PET_NODE_RANK]] as const;
  const given = sources.find(([, v]) => v !== undefined);
  if (!given) return hostname();
  if (!/^\d+$/.test(given[1]!)) throw new SigmaError('SGT_CLI_USAGE', `${given[0]} must be a non-negative integer (the node's index), got "${given[1]}"`);
  return `node${Number(given[1])}`;
}
