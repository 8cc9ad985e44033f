#!/usr/bin/env node
// sigmatrain command line: reads argv and env, loads the config once, and calls one function per subcommand.
import { loadConfig } from '../shared/config/index.js';
import { createLogger } from '../shared/log.js';
import { SigmaError } from '../shared/errors.js';

const USAGE = `usage: sigmatrain <command> [options] [--<config.key> value ...]

commands:
  train --config FILE     train in one process (σReparam ViT on the configured dataset)

Every config key can be set with --<key> value (e.g. --train.epochs 3) or SIGMATRAIN_<KEY> (e.g. SIGMATRAIN_TRAIN_EPOCHS=3).
See README.md for the keys.`;

/** Splits "--config FILE" (and "--config=FILE") from the config-key flags. */
export function splitArgs(argv: string[]): { command?: string; file?: string; rest: string[]; help: boolean } {
  const [command, ...args] = argv;
  let file: string | undefined;
  const rest: string[] = [];
  let help = command === '--help' || command === '-h' || command === 'help';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--help' || a === '-h') help = true;
    else if (a === '--config') {
      file = args[++i];
      if (!file) throw new SigmaError('SGT_CLI_USAGE', '--config needs a file path');
    } else if (a.startsWith('--config=')) file = a.slice('--config='.length);
    else rest.push(a);
  }
  return { command: help && !command?.match(/^[a-z]/) ? undefined : command, file, rest, help };
}

async function main(argv: string[]): Promise<number> {
  const { command, file, rest, help } = splitArgs(argv);
  if (help || !command) {
    console.log(USAGE);
    return help ? 0 : 2;
  }
  switch (command) {
    case 'train': {
      const config = loadConfig({ file, args: rest });
      const log = createLogger({ role: 'worker', level: config.log.level });
      const { trainLocal } = await import('../worker/train/local.js');
      const s = await trainLocal(config, log);
      log.info(
        { summary: s },
        `done: ${s.steps} steps, ${s.epochs} epochs in ${s.seconds.toFixed(1)} s (${s.samplesPerSecond.toFixed(1)} samples/s, ${s.backend}); ` +
          `final loss ${s.finalLoss.toFixed(4)}; val_top1=${s.valTop1.toFixed(3)}; min entropy ${s.minEntropy.toFixed(3)} nats`,
      );
      return 0;
    }
    default:
      throw new SigmaError('SGT_CLI_USAGE', `unknown command "${command}"; run "sigmatrain --help"`);
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
