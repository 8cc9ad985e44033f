// Joint source/target subword vocabulary: BPE learned with HuggingFace `tokenizers` (native, deterministic),
// SentencePiece-style (Metaspace "▁" word boundaries, byte fallback so every input round-trips), one JSON file.
//
// The Node binding of `tokenizers` trains only with the model's default trainer (BpeTrainer::default: 30 000
// tokens, no special tokens). BPE merges are learned greedily and in order, so the first K merges of a longer run
// are exactly what a run stopped at K merges learns: we train once and keep the merges that fit `vocabSize`; a
// larger vocabulary continues the same greedy rule past the trainer's 30 000 (bpe_extend.ts).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import tokenizers from 'tokenizers';
import { SigmaError } from '../../../shared/errors.js';
import { countWords, extendMerges } from './bpe_extend.js';

const { Tokenizer } = tokenizers;
const execFileAsync = promisify(execFile);

/** fairseq's Dictionary order: <s>=0, <pad>=1, </s>=2, <unk>=3. */
export const SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'] as const;
const N_BYTES = 256;
/** What BpeTrainer::default() stops at (tokens learned, alphabet included). */
export const TRAINER_LIMIT = 30000;
export const VOCAB_FILE = 'vocab.json';

export interface VocabTrainOptions {
  /** Total size: 4 special tokens + 256 byte-fallback tokens + characters + merges. */
  vocabSize: number;
  /** Unicode normalisation applied before encoding (SentencePiece's default is NFKC). */
  normalization?: 'nfkc' | 'none';
  /** Train on at most this many sentences (the first ones; SentencePiece's input_sentence_size). 0 = all. */
  maxSentences?: number;
  /**
   * What a corpus too small to fill `vocabSize` gets. false (default; SentencePiece's --hard_vocab_limit=false): the
   * largest vocabulary it yields (`size` < `requested` says so); true: an SGT_VOCAB error.
   */
  hardLimit?: boolean;
}

export interface TrainedVocab {
  path: string;
  hash: string;
  /** Tokens in the file: `requested`, or fewer when the corpus yields no more merges (soft limit). */
  size: number;
  requested: number;
  sentences: number;
  /** Merges learned past the trainer's TRAINER_LIMIT tokens (bpe_extend.ts); 0 when the trainer sufficed. */
  extended: number;
  merges: number;
  alphabet: number;
}

export interface Vocab {
  path: string;
  /** sha256 (hex) of the vocabulary file: runs and checkpoints record it; resuming with another is refused. */
  hash: string;
  size: number;
  bos: number;
  pad: number;
  eos: number;
  unk: number;
  /**
   * Subword ids of one sentence, without <s>/</s>. decode(encode(s)) === s for NFKC-normal text (any text with
   * normalization 'none'), except that leading whitespace is not kept (SentencePiece drops it too).
   */
  encode(text: string): Promise<Int32Array>;
  encodeBatch(texts: string[]): Promise<Int32Array[]>;
  /** Text of ids; special tokens are skipped. */
  decode(ids: ArrayLike<number>): Promise<string>;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function normalizerJson(n: 'nfkc' | 'none'): unknown {
  return n === 'nfkc' ? { type: 'NFKC' } : null;
}

const METASPACE = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true };

/**
 * Learns a BPE vocabulary of `vocabSize` tokens (fewer if the corpus yields fewer and the limit is soft) from
 * `sentences` (source and target text interleaved for a joint vocabulary) and writes `<dir>/vocab.json`. Same
 * sentences and options → same file bytes.
 */
export async function trainVocab(sentences: AsyncIterable<string> | Iterable<string>, dir: string, o: VocabTrainOptions): Promise<TrainedVocab> {
  const normalization = o.normalization ?? 'nfkc';
  const minSize = SPECIALS.length + N_BYTES + 1;
  if (!Number.isInteger(o.vocabSize) || o.vocabSize < minSize) {
    throw new SigmaError('SGT_VOCAB', `vocabSize must be an integer ≥ ${minSize} (4 specials + 256 byte tokens + 1), got ${o.vocabSize}`);
  }
  await mkdir(dir, { recursive: true });
  const tmp = await mkdtemp(join(tmpdir(), 'sigmatrain-vocab-'));
  try {
    // 1. The training text, one sentence per line, streamed to disk (the trainer reads files, in Rust).
    const textFile = join(tmp, 'train.txt');
    const out = createWriteStream(textFile);
    let n = 0;
    for await (const s of sentences) {
      if (o.maxSentences && n >= o.maxSentences) break;
      if (!out.write(s.replace(/\n/g, ' ') + '\n')) await once(out, 'drain');
      n++;
    }
    out.end();
    await once(out, 'finish');
    if (n === 0) throw new SigmaError('SGT_VOCAB', 'no training sentences to learn a vocabulary from (is the training corpus empty after cleaning?)');

    // 2. Train, in a child process (see vocab_train_child.ts: the native trainer prints to fd 1).
    const trainedFile = join(tmp, 'trained.json');
    try {
      await execFileAsync(process.execPath, [fileURLToPath(new URL('./vocab_train_child.js', import.meta.url)), textFile, normalization, trainedFile], {
        maxBuffer: 1 << 20,
      });
    } catch (e) {
      throw new SigmaError('SGT_VOCAB', `the BPE trainer failed: ${(e as { stderr?: string }).stderr || (e as Error).message}`, { cause: e });
    }
    const trained = JSON.parse(await readFile(trainedFile, 'utf8')) as {
      model: { vocab: Record<string, number>; merges: ([string, string] | string)[] };
    };

    // 3. Compose: specials, byte tokens, the alphabet, then merge products in learned order up to vocabSize.
    const vocabList: string[] = [...SPECIALS];
    for (let b = 0; b < N_BYTES; b++) vocabList.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    const have = new Set(vocabList);
    const byId = Object.entries(trained.model.vocab).sort((a, b) => a[1] - b[1]);
    const merges = trained.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
    const products = new Set(merges.map(([a, b]) => a + b));
    const alphabet = byId.filter(([t]) => !products.has(t) || [...t].length === 1).map(([t]) => t);
    for (const t of alphabet) {
      if (!have.has(t)) {
        vocabList.push(t);
        have.add(t);
      }
    }
    if (vocabList.length > o.vocabSize) {
      throw new SigmaError(
        'SGT_VOCAB',
        `vocabSize ${o.vocabSize} is smaller than the ${vocabList.length} tokens that specials, bytes and the corpus's ` +
          `${alphabet.length} characters need; raise vocabSize`,
      );
    }
    const kept: [string, string][] = [];
    for (const [a, b] of merges) {
      const p = a + b;
      if (!have.has(p)) {
        if (vocabList.length === o.vocabSize) break;
        vocabList.push(p);
        have.add(p);
      }
      kept.push([a, b]);
    }
    let extended = 0;
    if (vocabList.length < o.vocabSize && byId.length >= TRAINER_LIMIT) {
      // The trainer stopped at its fixed size, not for want of pairs: continue its greedy rule (bpe_extend.ts).
      const more = extendMerges(await countWords(textFile, normalization), vocabList, kept, o.vocabSize - vocabList.length);
      kept.push(...more.merges);
      vocabList.push(...more.tokens);
      extended = more.merges.length;
    }
    if (vocabList.length < o.vocabSize && o.hardLimit) {
      throw new SigmaError(
        'SGT_VOCAB',
        `vocabSize ${o.vocabSize} cannot be reached: this corpus yields at most ${vocabList.length} tokens ` +
          `(${alphabet.length} characters, ${kept.length} merges); lower vocabSize or make the limit soft`,
      );
    }

    // 4. Write the tokenizer JSON ourselves (fixed key order → reproducible bytes), then check it loads.
    const vocab: Record<string, number> = {};
    vocabList.forEach((t, i) => (vocab[t] = i));
    const json = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: SPECIALS.map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: normalizerJson(normalization),
      pre_tokenizer: METASPACE,
      post_processor: null,
      decoder: { type: 'Sequence', decoders: [{ type: 'ByteFallback' }, METASPACE] },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: '<unk>',
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges: kept,
      },
    };
    const text = JSON.stringify(json);
    Tokenizer.fromString(text); // throws if the library would not read it
    const path = join(dir, VOCAB_FILE);
    await writeFile(path + '.tmp', text);
    await rename(path + '.tmp', path);
    return { path, hash: sha256Hex(text), size: vocabList.length, requested: o.vocabSize, sentences: n, merges: kept.length, extended, alphabet: alphabet.length };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Loads a vocabulary written by trainVocab (a directory holding vocab.json, or the file itself). */
export async function loadVocab(pathOrDir: string): Promise<Vocab> {
  const path = pathOrDir.endsWith('.json') ? pathOrDir : join(pathOrDir, VOCAB_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new SigmaError('SGT_VOCAB', `cannot read vocabulary ${path} (${(e as Error).message}); train one with \`sigmatrain vocab\``, { cause: e });
  }
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = Tokenizer.fromString(text);
  } catch (e) {
    throw new SigmaError('SGT_VOCAB', `${path} is not a tokenizer file (${(e as Error).message})`, { cause: e });
  }
  const ids = SPECIALS.map((s) => tok.tokenToId(s));
  if (ids.some((id, i) => id !== i)) {
    throw new SigmaError('SGT_VOCAB', `${path}: special tokens ${SPECIALS.join(' ')} must have ids 0..3, found ${ids.join(' ')}`);
  }
  const toIds = (e: { getIds(): number[] }) => Int32Array.from(e.getIds());
  return {
    path,
    hash: sha256Hex(text),
    size: tok.getVocabSize(true),
    bos: 0,
    pad: 1,
    eos: 2,
    unk: 3,
    encode: async (s) => toIds(await tok.encode(s, null, { addSpecialTokens: false })),
    encodeBatch: async (ss) => (ss.length === 0 ? [] : (await tok.encodeBatch(ss, { addSpecialTokens: false })).map(toIds)),
    decode: (ids) => tok.decode(Array.from(ids), true),
  };
}
