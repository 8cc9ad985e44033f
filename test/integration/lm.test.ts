// Issue 12 (WikiText-103 part): the language-model task end to end. A small corpus in WikiText-103's format is
// generated, `sigmatrain run --workers 2` trains configs/lm-demo.yaml on it, the two workers prepare the data once
// between them, and the summary's perplexities (the paper's window evaluation) are far below the uniform model's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeWikitextDemo } from '../../worker/data/wikitext_demo.js';
import { readVocab } from '../../worker/data/wikitext.js';
import { sigmatrain, tempDir, coordinatorAddress } from './helpers/job.js';

const CONFIG = fileURLToPath(new URL('../../../configs/lm-demo.yaml', import.meta.url));

interface Summary { task: string; headline: string; steps: number; totalSteps?: number; workerFailures?: number; eval: Record<string, number> }

test('lm: `sigmatrain run --workers 2` on a generated WikiText-format corpus reaches a perplexity far below the vocabulary size', { timeout: 150_000 }, async () => {
  const root = tempDir('lm-data');
  await writeWikitextDemo(root, 3);
  const dir = tempDir('lm-run');
  const p = sigmatrain(['run', '--config', CONFIG, '--workers', '2', '--run-dir', dir, '--data.root', root,
    '--train.epochs', '3', '--metrics.port', '0', '--dist.coordinator', coordinatorAddress()]);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const done = p.messages(/^done: /)[0];
  assert.ok(done, 'a summary line');
  const s = done.summary as Summary;
  console.log(`# lm run --workers 2: ${JSON.stringify(s.eval)} after ${s.steps} steps`);
  assert.equal(s.task, 'lm');
  assert.equal(s.headline, 'valid_ppl');
  assert.equal(s.steps, s.totalSteps);
  assert.equal(s.workerFailures, 0);
  assert.match(String(done.msg), /valid_ppl=\d+\.\d{3} valid_loss=\d+\.\d{4} ppl=\d+\.\d{3} test_loss=\d+\.\d{4}/);
  // The uniform model's perplexity is the vocabulary size (read back from the vocabulary file the run wrote).
  const vocab = await readVocab(join(root, 'wikitext-103', 'sigmatrain-cache', 'dict.tokens.min1.txt'));
  const uniform = vocab.tokens.length;
  assert.ok(s.eval.ppl < uniform / 5, `test ppl ${s.eval.ppl} vs uniform ${uniform}`);
  assert.ok(s.eval.valid_ppl < uniform / 5, `valid ppl ${s.eval.valid_ppl} vs uniform ${uniform}`);
  assert.ok(Math.abs(Math.log(s.eval.ppl) - s.eval.test_loss) < 1e-6, 'ppl = exp(test_loss)');
  // One worker built the vocabulary and caches; the other waited on the lock and reused them.
  const prepared = p.messages(/^task lm: /).map((l) => String(l.msg));
  assert.equal(prepared.length, 2, prepared.join('\n'));
  assert.equal(prepared.filter((m) => /built dict\.tokens\.min1\.txt/.test(m)).length, 1, prepared.join('\n'));
  assert.equal(prepared.filter((m) => /caches reused$/.test(m)).length, 1, prepared.join('\n'));
  const steps = readFileSync(join(dir, 'steps.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { unit: string; units: number; samples: number });
  for (const r of steps) {
    assert.equal(r.unit, 'tokens');
    assert.equal(r.units, 64 * r.samples, 'every block is 64 target tokens');
  }
});
