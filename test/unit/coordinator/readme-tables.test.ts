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
