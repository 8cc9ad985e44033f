// The translate task end to end on a small demo corpus (issue 12): `sigmatrain vocab` learns the vocabulary,
// `sigmatrain train` trains a tiny σReparam encoder-decoder and prints bleu= for the test set, the checkpoint records
// the vocabulary's hash, resuming with another vocabulary is refused, and `sigmatrain translate` reads stdin.
// This checks the wiring, not the quality (a few steps of a tiny model); configs/wmt-demo.yaml is the quality run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sigmatrain, tempDir, CLI } from './helpers/job.js';
import { writeDemoCorpus } from '../../worker/data/wmt/demo_corpus.js';

const CONFIG = fileURLToPath(new URL('../../../configs/wmt-demo.yaml', import.meta.url));

test('translate: vocab, train (summary prints bleu=), vocabulary recorded and enforced, translate on stdin', { timeout: 600_000 }, async () => {
  const root = tempDir('mt-root');
  await writeDemoCorpus(root, { seed: 3, train: 1200, dev: 16, test: 24 });
  const data = ['--config', CONFIG, '--data.root', root, '--data.wmt.vocabSize', '400'];
  const common = [
    ...data, '--model.seq2seq.variant', 'tiny', '--train.maxSteps', '12', '--train.maxTokens', '512', '--data.wmt.plannedWorkers', '1',
    '--decode.beam', '2', '--metrics.port', '0',
  ];
  const v = spawnSync(process.execPath, [CLI, 'vocab', ...data], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  const [vocabPath, hash] = v.stdout.trim().split('\n');
  assert.match(hash!, /^[0-9a-f]{64}$/);
  assert.ok(readFileSync(vocabPath!).length > 0);

  const runDir = tempDir('mt-run');
  const p = sigmatrain(['train', '--run-dir', runDir, ...common]);
  assert.equal(await p.exit, 0, p.text.slice(-20).join('\n'));
  const done = p.messages(/^done: /)[0];
  assert.ok(done, p.text.slice(-10).join('\n'));
  assert.match(String(done.msg), /bleu=\d/);
  const s = done.summary as { headline: string; eval: Record<string, number> };
  assert.equal(s.headline, 'valid_bleu');
  for (const k of ['valid_bleu', 'valid_chrf', 'valid_loss', 'bleu', 'chrf']) assert.ok(Number.isFinite(s.eval[k]), `${k} in ${JSON.stringify(s.eval)}`);

  // The checkpoint records the vocabulary's hash (the same one `vocab` printed).
  const ckpts = readdirSync(join(runDir, 'checkpoints')).filter((d) => /\d/.test(d)).sort();
  const state = JSON.parse(readFileSync(join(runDir, 'checkpoints', ckpts.at(-1)!, 'state.json'), 'utf8')) as { state?: { architecture: { vocabHash: string } }; architecture?: { vocabHash: string } };
  assert.equal((state.state ?? state).architecture!.vocabHash, hash);

  // Resuming with another vocabulary (another size) is refused, naming the vocabulary hash.
  const r = sigmatrain(['train', '--run-dir', runDir, '--resume', 'auto', ...common.map((a) => (a === '400' ? '420' : a === '12' ? '14' : a))]);
  assert.notEqual(await r.exit, 0);
  assert.match(r.text.join('\n'), /vocabHash/);

  // sigmatrain translate: one line out per line in, from the run's checkpoint and vocabulary.
  const t = spawnSync(process.execPath, [CLI, 'translate', '--run-dir', runDir], { input: 'I see two red birds.\nTom buys a house.\n', encoding: 'utf8' });
  assert.equal(t.status, 0, t.stderr);
  assert.equal(t.stdout.split('\n').length, 3, t.stdout);
  const bad = spawnSync(process.execPath, [CLI, 'translate', '--run-dir', tempDir('mt-empty')], { input: '', encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /no complete checkpoint/);
});
