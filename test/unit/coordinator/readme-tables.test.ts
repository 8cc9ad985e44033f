// The README's experiment tables are generated from configs/experiments/results/*.json (issue 11 item 10): this
// fails while they differ; `npm run readme:tables` rewrites them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadResults, readmeBlocks, renderReadme } from '../../../coordinator/experiments/readme.js';
import { summarizeMethods } from '../../../coordinator/experiments/analyze.js';

const README = fileURLToPath(new URL('../../../../README.md', import.meta.url));

test('README.md experiment tables equal the ones generated from configs/experiments/results (npm run readme:tables)', () => {
  const readme = readFileSync(README, 'utf8');
  const blocks = readmeBlocks();
  assert.ok(blocks.size >= 2);
  assert.equal(renderReadme(readme, blocks), readme, 'README.md tables are stale: run npm run readme:tables');
});

test('the per-run results hold the grid the README describes: 22 runs, 8 + 8 AdamW, 6 LARS', () => {
  const r = loadResults('robustness');
  assert.equal(r.runs.length, 22);
  assert.deepEqual(summarizeMethods(r.runs).map((m) => [m.method, m.runs]), [['baseline pre-LN · AdamW', 8], ['σReparam no-LN · AdamW', 8], ['σReparam no-LN · LARS', 6]]);
  // The README's run-time figure is the sum of the runs' wall times.
  const minutes = r.runs.reduce((a, o) => a + o.seconds, 0) / 60;
  assert.match(readFileSync(README, 'utf8'), new RegExp(`${minutes.toFixed(1)} min together`));
});

test('a changed result changes the table; a README without the markers is an error naming the block', () => {
  const readme = readFileSync(README, 'utf8');
  const blocks = readmeBlocks();
  const changed = new Map(blocks);
  changed.set('robustness:methods', blocks.get('robustness:methods')!.replace('0.430 ± 0.274', '0.431 ± 0.274'));
  assert.notEqual(renderReadme(readme, changed), readme);
  assert.throws(() => renderReadme('# no tables here\n', blocks), /README.md has no <!-- BEGIN robustness:methods/);
});

/** Every number in a JSON value (recursively). */
function numbersOf(x: unknown, out: number[] = []): number[] {
  if (typeof x === 'number' && Number.isFinite(x)) out.push(x);
  else if (Array.isArray(x)) for (const v of x) numbersOf(v, out);
  else if (x && typeof x === 'object') for (const v of Object.values(x)) numbersOf(v, out);
  return out;
}

/**
 * The decimal figures (0.82, 1.049, 3.05e4) of `prose` that no value of `data` prints as: a figure with d decimals
 * matches v when v.toFixed(d) equals it; one in e-notation when it is v to as many significant digits as it shows.
 */
function unmatchedFigures(prose: string, data: number[]): string[] {
  const figures = prose.match(/(?<![\w.])\d+\.\d+(?:e[+-]?\d+)?(?![\w.])|(?<![\w.])\d+e[+-]?\d+(?![\w.])/g) ?? [];
  return figures.filter((t) => {
    if (/e/.test(t)) {
      const digits = t.split('e')[0].replace('.', '').length;
      return !data.some((v) => Number(v.toPrecision(digits)) === Number(t));
    }
    const d = t.split('.')[1].length;
    return !data.some((v) => v.toFixed(d) === t);
  });
}

/** The text from `from` to `to` (or to the end). */
const section = (text: string, from: string, to: string): string => {
  const a = text.indexOf(from);
  assert.ok(a >= 0, `README.md has "${from}"`);
  const b = text.indexOf(to, a + from.length);
  return text.slice(a + from.length, b < 0 ? undefined : b);
};

test('every decimal figure in the README findings of both experiments is a value of their results (issue 11 item 10)', () => {
  const readme = readFileSync(README, 'utf8');
  const log16 = Math.log(16); // uniform attention over the 16 tokens
  const rob = loadResults('robustness');
  const robProse = section(readme, '<!-- END robustness:cells -->', '**Temperature intervention**');
  assert.deepEqual(unmatchedFigures(robProse, [...numbersOf(rob.runs), log16]), [], 'robustness figures with no run behind them');
  const iv = loadResults('intervention');
  const ivProse = section(readme, '<!-- END intervention:around -->', '\n## ');
  assert.deepEqual(unmatchedFigures(ivProse, [...numbersOf(iv.around), ...numbersOf(iv.runs), ...numbersOf(iv.setup), log16]), [], 'intervention figures with no run behind them');
  // The check itself: a figure off by one in its last digit is caught, in both notations.
  assert.deepEqual(unmatchedFigures('fell to 0.12 and 3.06e4, not 0.111 or 3.05e4', [0.111, 30500]), ['0.12', '3.06e4']);
});

test('the README prose on the ring against gloo quotes the committed bench:allreduce measurement', () => {
  const r = loadResults('allreduce-gloo') as unknown as { comparison: Array<{ plane: string; transport: string; sizeMB: number; ratio: number }> };
  const at64 = (transport: string) => r.comparison.find((c) => c.plane === 'net' && c.transport === transport && c.sizeMB === 64)!.ratio.toFixed(2);
  const readme = readFileSync(README, 'utf8');
  assert.match(readme, new RegExp(`at 64 MB ${at64('ipc')}× on ipc`));
  assert.match(readme, new RegExp(`and ${at64('tcp')}× on tcp`));
  // "above gloo at every size on both transports" holds for the net plane's rows
  for (const c of r.comparison.filter((x) => x.plane === 'net')) assert.ok(c.ratio > 1, `${c.transport} ${c.sizeMB} MB: ${c.ratio}`);
});
