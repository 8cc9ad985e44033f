// Entry for `npm run data:lm-demo -- --out DIR [--seed N]`: writes the language-model demo corpus
// (worker/data/wikitext_demo.ts) as DIR/wikitext-103/wiki.{train,valid,test}.tokens. Thin: parse argv, call one function.
import { parseArgs } from 'node:util';
import { SigmaError } from '../../shared/errors.js';
import { writeWikitextDemo } from '../../worker/data/wikitext_demo.js';

const USAGE = 'usage: npm run data:lm-demo -- --out DIR [--seed N]';

async function main(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { out: { type: 'string' }, seed: { type: 'string' } } }));
  } catch (err) {
    throw new SigmaError('SGT_CLI_USAGE', `${(err as Error).message}; ${USAGE}`);
  }
  if (!values.out) throw new SigmaError('SGT_CLI_USAGE', `--out is required; ${USAGE}`);
  if (values.seed !== undefined && !/^\d+$/.test(values.seed)) throw new SigmaError('SGT_CLI_USAGE', `--seed=${values.seed} is not a non-negative integer; ${USAGE}`);
  const files = await writeWikitextDemo(values.out, values.seed === undefined ? 1 : Number(values.seed));
  process.stdout.write(`wrote the LM demo corpus:\n${files.map((f) => `  ${f}\n`).join('')}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
