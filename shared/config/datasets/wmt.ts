// WMT parallel text (data.kind wmt, task translate): data.wmt.*.
import type { Fragment } from '../fragment.js';

export const wmt = {
  src: { doc: 'wmt: source language code as in the file names (training/*.de-en.en, dev/<set>-ende-src.en.sgm).', format: 'string', default: 'en' },
  tgt: { doc: 'wmt: target language code.', format: 'string', default: 'de' },
  valid: { doc: 'wmt: validation set name (SGM, WMT XML or aligned files under data.root, e.g. newstest2013), scored every evaluation as valid_bleu/valid_chrf.', format: 'string', default: 'newstest2013' },
  test: { doc: 'wmt: test set name (e.g. newstest2014), scored once after the last step as bleu/chrf.', format: 'string', default: 'newstest2014' },
  corpora: { doc: 'wmt: comma-separated prefixes of the training files to use (e.g. "europarl-v7,commoncrawl"); "" uses every training corpus found.', format: 'string', default: '' },
  vocabSize: { doc: 'wmt: joint BPE vocabulary size, learned on first use from the cleaned training text (past the tokenizers trainer\'s fixed 30 000 tokens, merges continue by the same greedy rule, e.g. the paper\'s ~41k).', format: 'positive-int', default: 8000 },
  hardVocabLimit: { doc: 'wmt: a training text too small to fill vocabSize is an error (true) or gets the largest vocabulary it yields, logged with both sizes (false; SentencePiece\'s --hard_vocab_limit=false).', format: 'bool', default: false },
  vocabSentences: { doc: 'wmt: learn the vocabulary from at most this many training sentences (0: all).', format: 'count', default: 2000000 },
  clean: {
    removeEmpty: { doc: 'wmt: drop training pairs with an empty side.', format: 'bool', default: true },
    minTokens: { doc: 'wmt: fewest whitespace tokens per training side (clean-corpus-n min).', format: 'count', default: 1 },
    maxTokens: { doc: 'wmt: most whitespace tokens per training side (clean-corpus-n max; fairseq uses 250; 0: no limit).', format: 'count', default: 250 },
    maxChars: { doc: 'wmt: most characters per training side (0: no limit).', format: 'count', default: 0 },
    maxRatio: { doc: 'wmt: largest token-count ratio of a training pair either way (clean-corpus-n -ratio; 0: no limit).', format: 'non-negative', default: 1.5 },
  },
  translator: { doc: 'wmt: WMT XML test sets: which reference translator to score against ("" = the file\'s first).', format: 'string', default: '' },
  workDir: { doc: 'wmt: where the vocabulary and token cache live ("" = <data.root>/.sigmatrain, or a temp directory when data.root is read-only).', format: 'string', default: '' },
  plannedWorkers: { doc: 'wmt: world size the per-step batches are planned for (train.maxTokens per worker): sets the global batch. A generation with another world size re-splits the same global batches over its workers.', format: 'positive-int', default: 1 },
  evalSentences: { doc: 'wmt: beam-search at most this many sentences of the validation set each periodic evaluation (0: all; the test set is always scored whole).', format: 'count', default: 0 },
} as const satisfies Fragment;
