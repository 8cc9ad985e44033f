// Entry for `npm run data:mt-demo -- --out DIR [--seed N] [--train N] [--dev N] [--test N] [--max-number N]`: writes the
// translation demo corpus (worker/data/wmt/demo_corpus.ts) in WMT's formats. Thin: parse argv, call one function.

import { parseArgs } from 'node:util';
import { SigmaError } from '../../shared/errors.js';
import { DEFAULT_DEMO_SIZES, MAX_NUMBER, writeDemoCorpus } from '../../worker/data/wmt/demo_corpus.js';

const USAGE = 'usage: npm run data:mt-demo -- --out DIR [--seed N] [--train N] [--dev N] [--test N] [--max-number N]';

function intFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value)) throw new SigmaError('SGT_CLI_USAGE', `--${name}=${value} is not an integer; ${USAGE}`);
  return Number(value);
}

async function main(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { out: { type: 'string' }, seed: { type: 'string' }, train: { type: 'string' }, dev: { type: 'string' }, test: { type: 'string' }, 'max-number': { type: 'string' } },
    }));
  } catch (err) {
    throw new SigmaError('SGT_CLI_USAGE', `${(err as Error).message}; ${USAGE}`);
  }
  if (!values.out) throw new SigmaError('SGT_CLI_USAGE', `--out is required; ${USAGE}`);
  const t0 = performance.now();
  const res = await writeDemoCorpus(values.out, {
    seed: intFlag('seed', values.seed, 1),
    train: intFlag('train', values.train, DEFAULT_DEMO_SIZES.train),
    dev: intFlag('dev', values.dev, DEFAULT_DEMO_SIZES.dev),
    test: intFlag('test', values.test, DEFAULT_DEMO_SIZES.test),
    maxNumber: intFlag('max-number', values['max-number'], MAX_NUMBER),
  });
  const ms = Math.round(performance.now() - t0);
  process.stdout.write(`wrote ${res.train} training pairs (${res.aligned} aligned, ${res.tsv} TSV), ${res.dev} dev, ${res.test} test ` +
    `in ${ms} ms:\n${res.files.map((f) => `  ${f}\n`).join('')}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
