// sacreBLEU's BLEU tokenizers (13a, intl, char, none), reproducing sacrebleu 2.6.0 output string for string.
import { SigmaError } from '../errors.js';
import { codePoints, pySplit } from './text.js';

export const BLEU_TOKENIZERS = ['13a', 'intl', 'char', 'none'] as const;
export type BleuTokenizerName = (typeof BLEU_TOKENIZERS)[number];
export type Tokenizer = (line: string) => string;

// mteval-v13a's language-dependent rules, in order. The first class is ASCII punctuation and symbols except
// ' (0x27), , (0x2c), - (0x2d) and . (0x2e): { | } ~  [ \ ] ^ _ `  space ! " # $ % &  ( ) * +  : ; < = > ? @  /
const RULES_13A: Array<[RegExp, string]> = [
  [/([\x7b-\x7e\x5b-\x60\x20-\x26\x28-\x2b\x3a-\x40\x2f])/gu, ' $1 '],
  // period and comma unless preceded by a digit
  [/([^0-9])([.,])/gu, '$1 $2 '],
  // period and comma unless followed by a digit
  [/([.,])([^0-9])/gu, ' $1 $2'],
  // dash when preceded by a digit
  [/([0-9])(-)/gu, '$1 $2 '],
];

/** mteval-v13a as sacreBLEU runs it (`Tokenizer13a` then `TokenizerRegexp`): tokens joined by single spaces. */
export function tokenize13a(line: string): string {
  let s = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (s.includes('&')) {
    s = s.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  }
  s = ` ${s} `;
  for (const [re, repl] of RULES_13A) s = s.replace(re, repl);
  return pySplit(s).join(' ');
}

// mteval-v14 "international": split Unicode punctuation (P*) unless between digits (N*), and every symbol (S*).
const RULES_INTL: Array<[RegExp, string]> = [
  [/(\P{N})(\p{P})/gu, '$1 $2 '],
  [/(\p{P})(\P{N})/gu, ' $1 $2'],
  [/(\p{S})/gu, ' $1 '],
];

/** sacreBLEU's `intl` tokenizer (TokenizerV14International). */
export function tokenizeIntl(line: string): string {
  let s = line;
  for (const [re, repl] of RULES_INTL) s = s.replace(re, repl);
  return pySplit(s).join(' ');
}

/** sacreBLEU's `char` tokenizer: every code point becomes a token (whitespace ones vanish when BLEU splits). */
export function tokenizeChar(line: string): string {
  return codePoints(line).join(' ');
}

export function tokenizeNone(line: string): string {
  return line;
}

export function bleuTokenizer(name: string): Tokenizer {
  switch (name) {
    case '13a':
      return tokenize13a;
    case 'intl':
      return tokenizeIntl;
    case 'char':
      return tokenizeChar;
    case 'none':
      return tokenizeNone;
    default:
      throw new SigmaError('SGT_CONFIG_INVALID', `unknown BLEU tokenizer "${name}": use one of ${BLEU_TOKENIZERS.join(', ')}`);
  }
}
