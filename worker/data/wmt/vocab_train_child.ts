// Child process that runs the `tokenizers` BPE trainer: the native trainer writes progress newlines straight to
// fd 1, so it runs where stdout is not the CLI's (a `sigmatrain` command's stdout stays machine-readable).
// argv: <text file> <nfkc|none> <output json>

import tokenizers from 'tokenizers';

const { Tokenizer, BPE, metaspacePreTokenizer, nfkcNormalizer, replace, sequenceNormalizer } = tokenizers;
const [textFile, normalization, out] = process.argv.slice(2);
if (!textFile || !out || (normalization !== 'nfkc' && normalization !== 'none')) {
  process.stderr.write('usage: vocab_train_child <text file> <nfkc|none> <output json>\n');
  process.exit(2);
}
const tok = new Tokenizer(BPE.empty());
// The trainer sees lines with their newline: a Replace normaliser drops it so "\n" joins no merge.
const norms = [replace('\n', '')];
if (normalization === 'nfkc') norms.push(nfkcNormalizer());
tok.setNormalizer(sequenceNormalizer(norms));
tok.setPreTokenizer(metaspacePreTokenizer());
tok.train([textFile]);
tok.save(out);
