// A small corpus in WikiText-103's layout and format (" = Title = " headings between blank lines, one paragraph
// per line, @-@ joins), generated from a seeded grammar so that a tiny language model can lower its perplexity
// clearly: what configs/lm-demo.yaml and the LM integration test train on.
//
// The grammar: each article has a topic (animals, machines, rivers) that fixes its nouns; a sentence is
// "DET [ADJ] NOUN VERB DET [ADJ] NOUN [PREP DET NOUN] ." with singular/plural agreement between determiner, noun
// and verb. Context predicts a lot (the topic from earlier sentences, agreement, word order), so a model that learns
// it beats both the uniform baseline (the vocabulary size) and the unigram distribution by a wide margin.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Rng, deriveSeed } from '../rng.js';
import type { WikiSplit } from './wikitext.js';

const TOPICS: Record<string, { sg: string[]; pl: string[] }> = {
  animals: { sg: ['fox', 'owl', 'horse', 'otter', 'heron'], pl: ['foxes', 'owls', 'horses', 'otters', 'herons'] },
  machines: { sg: ['engine', 'pump', 'lathe', 'crane', 'turbine'], pl: ['engines', 'pumps', 'lathes', 'cranes', 'turbines'] },
  rivers: { sg: ['river', 'stream', 'delta', 'canal', 'lake'], pl: ['rivers', 'streams', 'deltas', 'canals', 'lakes'] },
};
const VERBS: Record<string, { sg: string[]; pl: string[] }> = {
  animals: { sg: ['chases', 'watches', 'follows'], pl: ['chase', 'watch', 'follow'] },
  machines: { sg: ['drives', 'powers', 'lifts'], pl: ['drive', 'power', 'lift'] },
  rivers: { sg: ['feeds', 'floods', 'joins'], pl: ['feed', 'flood', 'join'] },
};
const ADJ = ['old', 'large', 'small', 'well @-@ known', 'northern'];
const PREP = ['near', 'beyond', 'under'];
const DET_SG = ['the', 'a', 'each'];
const DET_PL = ['the', 'many', 'some'];
const TITLES: Record<string, string[]> = {
  animals: ['Wildlife of the Valley', 'Birds and Beasts'],
  machines: ['Industrial Works', 'The Mill'],
  rivers: ['Waters of the North', 'The Basin'],
};

export interface DemoSizes {
  /** Articles per split. */
  train: number;
  valid: number;
  test: number;
}

/** ≈ 36k training tokens, ≈ 3k validation and test tokens each. */
export const DEFAULT_LM_DEMO_SIZES: DemoSizes = { train: 300, valid: 25, test: 25 };

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function sentence(rng: Rng, topic: string): string {
  const np = (): { words: string; plural: boolean } => {
    const plural = rng.float() < 0.4;
    const det = pick(rng, plural ? DET_PL : DET_SG);
    const adj = rng.float() < 0.3 ? `${pick(rng, ADJ)} ` : '';
    return { words: `${det} ${adj}${pick(rng, plural ? TOPICS[topic]!.pl : TOPICS[topic]!.sg)}`, plural };
  };
  const subj = np();
  const verb = pick(rng, subj.plural ? VERBS[topic]!.pl : VERBS[topic]!.sg);
  const obj = np();
  const pp = rng.float() < 0.3 ? ` ${pick(rng, PREP)} ${np().words}` : '';
  return `${subj.words} ${verb} ${obj.words}${pp} .`;
}

/** One split's text: articles of 2–4 paragraphs of 3–6 sentences, laid out as in wiki.*.tokens. */
export function demoSplitText(seed: number, split: WikiSplit, articles: number): string {
  const rng = new Rng(deriveSeed(seed, ['train', 'valid', 'test'].indexOf(split), 0x1e4d));
  const topics = Object.keys(TOPICS);
  const lines: string[] = [''];
  for (let a = 0; a < articles; a++) {
    const topic = pick(rng, topics);
    lines.push(` = ${pick(rng, TITLES[topic]!)} = `, '');
    const paragraphs = 2 + rng.int(3);
    for (let p = 0; p < paragraphs; p++) {
      const n = 3 + rng.int(4);
      lines.push(` ${Array.from({ length: n }, () => sentence(rng, topic)).join(' ')} `);
    }
    lines.push('');
  }
  return lines.map((l) => `${l}\n`).join('');
}

/**
 * Writes <root>/wikitext-103/wiki.{train,valid,test}.tokens (each to a temporary name, then renamed). Returns the
 * files written.
 */
export async function writeWikitextDemo(root: string, seed = 1, sizes: DemoSizes = DEFAULT_LM_DEMO_SIZES): Promise<string[]> {
  const dir = path.join(root, 'wikitext-103');
  await fs.mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const split of ['train', 'valid', 'test'] as const) {
    const file = path.join(dir, `wiki.${split}.tokens`);
    const tmp = `${file}.tmp-${process.pid}`;
    await fs.writeFile(tmp, demoSplitText(seed, split, sizes[split]), 'utf8');
    await fs.rename(tmp, file);
    files.push(file);
  }
  return files;
}
