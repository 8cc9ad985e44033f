// Translation and speech scoring without tfjs: sacreBLEU-compatible BLEU and chrF(++), WER and CER, each with
// summable statistics (compute per shard, all-reduce the sums, score once).
export * from './bleu.js';
export * from './chrf.js';
export * from './edit.js';
export * from './tokenizers.js';
export { formatFixed } from './text.js';
