// Child process that runs the `tokenizers` BPE trainer: the native trainer writes progress newlines straight to
// fd 1, so it runs where stdout is not the CLI's (a `sigmatrain` command's stdout stays machine-readable).
// argv: <text file> <nfkc|none> <output json>

import tokenizers from 'tokenizers';
import { trainerPipeline } from './bpe_extend.js';

const { Tokenizer, BPE } = tokenizers;
const [textFile, normalization, out] = process.argv.slice(2);
if (!textFile || !out || (normalization !== 'nfkc' && normalization !== 'none')) {
  process.stderr.write('usage: vocab_train_child <text file> <nfkc|none> <output json>\n');
  process.exit(2);
}
const tok = new Tokenizer(BPE.empty());
const pipeline = trainerPipeline(normalization);
tok.setNormalizer(pipeline.normalizer);
tok.setPreTokenizer(pipeline.preTokenizer);
tok.train([textFile]);
tok.save(out);
