// Loads the sacreBLEU reference fixtures: bleu_cases.json (translation sets, copied from the shared reference
// vectors) and scoring/sacrebleu_edge_cases.json (small hand-made inputs; see make_sacrebleu_edge_cases.py).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const fixtures = fileURLToPath(new URL('../../../../../test/fixtures/', import.meta.url));

export interface SacreBleuResult {
  score: number;
  counts: number[];
  totals: number[];
  precisions?: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
}

export interface TranslationCase {
  name: string;
  hypotheses: string[];
  references: string[][];
  scores: Record<string, SacreBleuResult | number | number[]>;
}

export interface EdgeCase {
  name: string;
  hypotheses: string[];
  /** null marks a missing reference (sacreBLEU's None). */
  references: Array<Array<string | null>>;
  bleu_corpus: Array<{ options: Record<string, unknown> } & SacreBleuResult>;
  bleu_sentence: Array<{ options: Record<string, unknown>; results: SacreBleuResult[] }>;
  chrf_corpus: Array<{ options: Record<string, unknown>; score: number }>;
  chrf_sentence: Array<{ options: Record<string, unknown>; scores: number[] }>;
}

export interface EdgeFixture {
  cases: EdgeCase[];
  format: Array<{ value: number; width: number; text: string }>;
  cli: Array<{ case: string; args: string[]; stdout: string }>;
}

export function translationCases(): TranslationCase[] {
  return (JSON.parse(readFileSync(`${fixtures}bleu_cases.json`, 'utf8')) as { cases: TranslationCase[] }).cases;
}

export function edgeFixture(): EdgeFixture {
  return JSON.parse(readFileSync(`${fixtures}scoring/sacrebleu_edge_cases.json`, 'utf8')) as EdgeFixture;
}

/** Reference streams with null → undefined, our marker of a missing reference. */
export function refStreams(c: { references: Array<Array<string | null>> }): Array<Array<string | undefined>> {
  return c.references.map((s) => s.map((x) => (x === null ? undefined : x)));
}

/** |a − b| ≤ rtol·|b| + atol. */
export function near(a: number, b: number, rtol: number, atol: number): boolean {
  return Math.abs(a - b) <= rtol * Math.abs(b) + atol;
}
