// WikiText-103 (data.kind wikitext, task lm): data.wikitext.*.
import type { Fragment } from '../fragment.js';

export const wikitext = {
  variant: { doc: 'wikitext: tokens (wikitext-103/wiki.*.tokens, the benchmark) or raw (wikitext-103-raw/wiki.*.raw), found under data.root (or data.root itself holding the files).', format: ['tokens', 'raw'], default: 'tokens' },
  blockSize: { doc: 'wikitext: tokens per training block (fairseq --tokens-per-sample) and per evaluation window; train.globalBatch counts blocks.', format: 'positive-int', default: 512 },
  scoreLast: { doc: 'wikitext: evaluation scores the last this many tokens of each window (the window advances by it; the first window scores all), so each token has ≥ blockSize − scoreLast tokens of context. The paper: 512/256.', format: 'positive-int', default: 256 },
  minCount: { doc: 'wikitext: words seen fewer times in the training file read as <unk> (1: every word, the WikiText-103 vocabulary of 267 735).', format: 'positive-int', default: 1 },
  cacheDir: { doc: 'wikitext: where the vocabulary and token caches go ("": <dataset folder>/sigmatrain-cache); set it when the dataset folder is read-only. Prepared once; concurrent workers wait on a lock.', format: 'string', default: '' },
  evalBatch: { doc: 'wikitext: evaluation windows per forward (each forward holds [evalBatch, blockSize, vocabulary] logits: 2 × 512 × 267 735 floats ≈ 1.1 GB on WikiText-103).', format: 'positive-int', default: 2 },
} as const satisfies Fragment;
