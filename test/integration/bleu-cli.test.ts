// Runs the built CLI (`node dist/coordinator/cli/index.js bleu …`) on the translation sets and compares its standard
// output with what the sacreBLEU 2.6.0 command printed for the same files and arguments (-b -f text).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const CLI = fileURLToPath(new URL('../../coordinator/cli/index.js', import.meta.url));
const fixtures = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

interface Case { name: string; hypotheses: string[]; references: string[][] }
const cases = new Map((JSON.parse(readFileSync(join(fixtures, 'bleu_cases.json'), 'utf8')) as { cases: Case[] }).cases.map((c) => [c.name, c]));
const runs = (JSON.parse(readFileSync(join(fixtures, 'scoring/sacrebleu_edge_cases.json'), 'utf8')) as { cli: Array<{ case: string; args: string[]; stdout: string }> }).cli;

const dir = mkdtempSync(join(tmpdir(), 'sigmatrain-bleu-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(c: Case): { refs: string[]; hyp: string } {
  const refs = c.references.map((stream, k) => {
    const p = join(dir, `${c.name}.ref${k}.txt`);
    writeFileSync(p, stream.map((l) => `${l}\n`).join(''));
    return p;
  });
  return { refs, hyp: c.hypotheses.map((l) => `${l}\n`).join('') };
}

describe('sigmatrain bleu (built CLI) against the sacreBLEU command', () => {
  it('the fixture holds CLI runs', () => assert.ok(runs.length > 0));
  for (const r of runs) {
    it(`${r.case} ${r.args.join(' ')} → ${JSON.stringify(r.stdout)}`, () => {
      const c = cases.get(r.case);
      assert.ok(c, `case ${r.case} is in bleu_cases.json`);
      const { refs, hyp } = write(c);
      const out = execFileSync(process.execPath, [CLI, 'bleu', ...refs, ...r.args], { input: hyp, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';
      assert.equal(lastLine(out), lastLine(r.stdout), 'last line');
      assert.equal(out, r.stdout, 'whole standard output');
    });
  }
  it('mismatched line counts: exit 1 and a message naming the reference file and both counts', () => {
    const c = cases.get('multi_ref') ?? [...cases.values()][0];
    const { refs, hyp } = write(c);
    const short = hyp.split('\n').slice(0, 3).join('\n') + '\n';
    const p = spawnSync(process.execPath, [CLI, 'bleu', refs[0]], { input: short, encoding: 'utf8' });
    assert.equal(p.status, 1);
    assert.match(p.stderr, new RegExp(`SGT_DATA_INVALID: reference file ${refs[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has ${c.hypotheses.length} lines but the hypotheses \\(stdin\\) have 3`));
    assert.equal(p.stdout, '');
  });
  it('appears in sigmatrain --help', () => {
    assert.match(execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' }), /bleu REF \[REF2 \.\.\.\] < HYP/);
  });
});
