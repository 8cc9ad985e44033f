// `sigmatrain bleu` as a function of (argv, stdin, stdout): argument parsing, sacreBLEU's line reading (CRLF,
// final newline), and the errors for mismatched line counts, bad UTF-8, tabs and unknown options.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { bleuCommand, parseBleuArgs, textLines } from '../../../../coordinator/cli/bleu.js';
import { corpusBleu, corpusChrf, formatFixed } from '../../../../shared/scoring/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sigmatrain-bleu-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

async function run(argv: string[], stdin: string | Buffer): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await bleuCommand(argv, Readable.from([Buffer.from(stdin)]), stdout, stderr);
  return { code, out, err };
}

const HYPS = ['The cat sat on the mat.', 'A dog barked, loudly!', 'Nothing here'];
const REFS = ['The cat is on the mat.', 'The dog barked loudly!', 'Something here'];

describe('sigmatrain bleu', () => {
  it('prints the corpus score with one decimal on the last line, the detailed line on stderr', async () => {
    const ref = file('ref.txt', REFS.join('\n') + '\n');
    const r = await run([ref], HYPS.join('\n') + '\n');
    assert.equal(r.code, 0);
    const want = corpusBleu(HYPS, [REFS]);
    assert.equal(r.out, `${formatFixed(want.score, 1)}\n`);
    assert.match(r.err, /^BLEU\|nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|.* = \d+\.\d .*hyp_len = 15 ref_len = 14\)\n$/);
  });
  it('CRLF files and a missing final newline read as the same lines', async () => {
    const ref = file('ref-crlf.txt', REFS.join('\r\n') + '\r\n');
    const a = await run([ref, '-w', '4'], HYPS.join('\n'));
    const b = await run([file('ref-lf.txt', REFS.join('\n')), '--width=4'], HYPS.join('\r\n') + '\r\n');
    assert.equal(a.out, b.out);
    assert.equal(a.out, `${formatFixed(corpusBleu(HYPS, [REFS]).score, 4)}\n`);
  });
  it('options: tokenizer, lowercase, smoothing, and chrF printed after BLEU', async () => {
    const ref = file('ref2.txt', REFS.join('\n') + '\n');
    const r = await run([ref, '--tokenize', 'char', '-lc', '-m', 'chrf', 'bleu', '-cw', '2', '-w', '3'], HYPS.join('\n'));
    const bleu = corpusBleu(HYPS, [REFS], { tokenize: 'char', lowercase: true });
    const chrf = corpusChrf(HYPS, [REFS], { wordOrder: 2 });
    assert.equal(r.out, `${formatFixed(bleu.score, 3)}\n${formatFixed(chrf, 3)}\n`);
    assert.match(r.err, /\nchrF2\+\+\|/);
  });
  it('several reference files', async () => {
    const r1 = file('r1.txt', REFS.join('\n'));
    const r2 = file('r2.txt', HYPS.join('\n'));
    const r = await run([r1, r2, '-w', '2'], HYPS.join('\n'));
    assert.equal(r.out, '100.00\n');
  });
  it('mismatched line counts name both files and both counts', async () => {
    const ref = file('short.txt', 'one line\n');
    await assert.rejects(run([ref], 'a\nb\n'), (e: Error) => {
      assert.match(e.message, /SGT_DATA_INVALID: reference file .*short\.txt has 1 lines but the hypotheses \(stdin\) have 2/);
      return true;
    });
  });
  it('invalid UTF-8 names the file, the byte offset and the line', async () => {
    const ref = file('latin1.txt', Buffer.concat([Buffer.from('ok\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    await assert.rejects(run([ref], 'a\nb\n'), /SGT_DATA_INVALID: reference file .*latin1\.txt: byte 6 \(line 2\) is not valid UTF-8/);
    assert.throws(() => textLines(Buffer.from([0x61, 0x0a, 0xf0, 0x9f, 0x98]), 'x'), /x: byte 2 \(line 2\)/);
  });
  it('a tab in a hypothesis, an empty stdin, a missing file and unknown options are errors', async () => {
    const ref = file('ref3.txt', 'a\n');
    await assert.rejects(run([ref], 'a\tb\n'), /SGT_DATA_INVALID: hypotheses \(stdin\) line 1 contains a tab/);
    await assert.rejects(run([ref], ''), /SGT_DATA_INVALID: hypotheses \(stdin\): no lines/);
    await assert.rejects(run([join(dir, 'nope.txt')], 'a\n'), /SGT_DATA_INVALID: reference file .*nope\.txt: ENOENT/);
    assert.throws(() => parseBleuArgs(['r', '--tokenize', 'zh']), /SGT_CLI_USAGE.*--tokenize must be one of 13a, intl, char, none, got "zh"/);
    assert.throws(() => parseBleuArgs(['r', '--frobnicate']), /SGT_CLI_USAGE.*unknown option "--frobnicate"/);
    assert.throws(() => parseBleuArgs(['r', '-w']), /SGT_CLI_USAGE.*-w needs a value/);
    assert.throws(() => parseBleuArgs(['-lc']), /SGT_CLI_USAGE.*at least one reference file/);
    assert.throws(() => parseBleuArgs(['r', '-m', 'ter']), /SGT_CLI_USAGE.*bleu, chrf; got "ter"/);
  });
  it('warns on stderr when 100 hypotheses end in a tokenized period, unless --force', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => `this is line ${i} .`).join('\n');
    const ref = file('tok.txt', lines);
    const warned = await run([ref], lines);
    assert.match(warned.err, /^warning: 100 hypotheses end in a tokenized period/);
    assert.equal(warned.out, '100.0\n');
    assert.doesNotMatch((await run([ref, '--force'], lines)).err, /warning/);
  });
  it('--help prints the usage', async () => {
    const r = await run(['--help'], '');
    assert.equal(r.code, 0);
    assert.match(r.out, /^usage: sigmatrain bleu REF_FILE/);
  });
});
