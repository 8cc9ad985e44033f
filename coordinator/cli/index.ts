#!/usr/bin/env node
// sigmatrain command line (the package's bin): reads argv, picks the subcommand, and calls its one function; each
// subcommand lives in its own file next to this one (args.ts parses the flags they share).
import { SigmaError } from '../../shared/errors.js';
import { parseArgs } from './args.js';

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
  vocab --config F [--force]    learn (or reuse) a translate config's joint vocabulary; prints its path and sha256
  translate --run-dir D         translate stdin → stdout with the run's latest checkpoint (--beam N, --vocab PATH)
  transcribe --run-dir D F.flac one transcript per FLAC file from an asr run's latest checkpoint (--beam N)

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

/** Subcommands that parse their own arguments (positional ones, or streams in and out). */
const RAW: Record<string, (argv: string[]) => Promise<number>> = {
  ctl: async (a) => (await import('./ctl.js')).ctlCommand(a),
  report: async (a) => (await import('./report.js')).reportCommand(a),
  bleu: async (a) => (await import('./bleu.js')).bleuCommand(a, process.stdin, process.stdout, process.stderr),
  vocab: async (a) => (await import('./translate.js')).vocabCommand(a, process.stdout, process.stderr),
  translate: async (a) => (await import('./translate.js')).translateCommand(a, process.stdin, process.stdout, process.stderr),
  transcribe: async (a) => (await import('./transcribe.js')).transcribeCommand(a, process.stdout, process.stderr),
};

/** Subcommands of the common flags (--config, --run-dir, config keys …). */
const PARSED: Record<string, (p: ReturnType<typeof parseArgs>) => Promise<number>> = {
  run: async (p) => (await import('./run.js')).runCommand(p),
  train: async (p) => (await import('./train.js')).trainCommand(p),
  coordinator: async (p) => (await import('./coordinator.js')).coordinatorCommand(p),
  launch: async (p) => (await import('./launch.js')).launchCommand(p),
  worker: async (p) => (await import('./worker.js')).workerCommand(p),
};

async function main(argv: string[]): Promise<number> {
  if (argv[0] !== undefined && Object.hasOwn(RAW, argv[0])) return RAW[argv[0]](argv.slice(1));
  const p = parseArgs(argv);
  if (p.help || !p.command) {
    console.log(USAGE);
    return p.help ? 0 : 2;
  }
  const command = Object.hasOwn(PARSED, p.command) ? PARSED[p.command] : undefined;
  if (!command) throw new SigmaError('SGT_CLI_USAGE', `unknown command "${p.command}"; run "sigmatrain --help"`);
  return command(p);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as Error;
    console.error(e instanceof SigmaError ? e.message : e.stack ?? String(e));
    process.exit(1);
  },
);
