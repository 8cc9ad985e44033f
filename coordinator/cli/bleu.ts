// `sigmatrain bleu REF [REF2 …] < HYP`: corpus BLEU (and chrF) of a detokenized system output, printed as
// `sacrebleu -b` prints it (score only, one line per metric); the full sacreBLEU-style line goes to stderr.
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { SigmaError } from '../../shared/errors.js';
import { pyRstrip } from '../../shared/scoring/text.js';
import { BLEU_SMOOTH_METHODS, BLEU_TOKENIZERS, bleuFromStats, bleuStats, chrfFromStats, chrfStats, formatFixed, type BleuScore, type BleuSmoothMethod, type BleuTokenizerName, type ChrfOptions } from '../../shared/scoring/index.js';

export const BLEU_USAGE = `usage: sigmatrain bleu REF_FILE [REF_FILE2 ...] [options] < HYP_FILE

Corpus BLEU of HYP_FILE (stdin, one detokenized hypothesis per line) against one or more reference files
(one line per hypothesis each), computed as sacreBLEU 2.6.0 does. Standard output gets the score alone, one line per
metric (as "sacrebleu -b"); standard error gets the full line with the signature, precisions and lengths.

options:
  --tokenize, -tok 13a|intl|char|none   BLEU tokenizer (default 13a)
  --lowercase, -lc                      case-insensitive BLEU
  --smooth-method, -s exp|floor|add-k|none   (default exp)
  --smooth-value, -sv V                 for floor (default 0.1) and add-k (default 1)
  --metrics, -m LIST                    bleu, chrf, comma- or space-separated (default bleu); printed in that order
  --chrf                                same as --metrics bleu,chrf
  --chrf-word-order, -cw N              chrF word n-gram order (2 gives chrF++; default 0)
  --chrf-lowercase                      case-insensitive chrF
  --width, -w N                         decimals printed (default 1, as sacreBLEU)
  --force                               no warning about hypotheses that look tokenized (" ." endings)
  --score-only, -b                      accepted for sacreBLEU compatibility (standard output is always score-only)`;

export interface BleuCommandOptions {
  refFiles: string[];
  tokenize: BleuTokenizerName;
  lowercase: boolean;
  smooth: BleuSmoothMethod;
  smoothValue?: number;
  metrics: Array<'bleu' | 'chrf'>;
  chrf: ChrfOptions;
  width: number;
  force: boolean;
}

/** Parses the command's own arguments (after `bleu`); every mistake names the argument and what it accepts. */
export function parseBleuArgs(argv: readonly string[]): BleuCommandOptions | 'help' {
  const o: BleuCommandOptions = { refFiles: [], tokenize: '13a', lowercase: false, smooth: 'exp', metrics: ['bleu'], chrf: { wordOrder: 0, lowercase: false }, width: 1, force: false };
  const usage = (msg: string): never => {
    throw new SigmaError('SGT_CLI_USAGE', `sigmatrain bleu: ${msg} (see "sigmatrain bleu --help")`);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) usage(`${name} needs a value`);
      return v;
    };
    const int = (min: number): number => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer ≥ ${min}, got "${v}"`);
      return n;
    };
    switch (name) {
      case '--help':
      case '-h':
        return 'help';
      case '--tokenize':
      case '-tok': {
        const v = value();
        if (!(BLEU_TOKENIZERS as readonly string[]).includes(v)) usage(`${name} must be one of ${BLEU_TOKENIZERS.join(', ')}, got "${v}"`);
        o.tokenize = v as BleuTokenizerName;
        break;
      }
      case '--lowercase':
      case '-lc':
        o.lowercase = true;
        break;
      case '--smooth-method':
      case '-s': {
        const v = value();
        if (!(BLEU_SMOOTH_METHODS as readonly string[]).includes(v)) usage(`${name} must be one of ${BLEU_SMOOTH_METHODS.join(', ')}, got "${v}"`);
        o.smooth = v as BleuSmoothMethod;
        break;
      }
      case '--smooth-value':
      case '-sv': {
        const v = value();
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n) || n < 0) usage(`${name} must be a non-negative number, got "${v}"`);
        o.smoothValue = n;
        break;
      }
      case '--metrics':
      case '-m': {
        const v = value();
        const list = v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
        // sacreBLEU's space-separated form (-m bleu chrf) as well.
        while (eq < 0 && (argv[i + 1] === 'bleu' || argv[i + 1] === 'chrf')) list.push(argv[++i]);
        const unknown = list.filter((m) => m !== 'bleu' && m !== 'chrf');
        if (list.length === 0 || unknown.length > 0) usage(`${name} takes a comma-separated list of bleu, chrf; got "${v}"`);
        // sacreBLEU prints metrics in name order (BLEU before chrF), whatever order they were asked in.
        o.metrics = (['bleu', 'chrf'] as const).filter((m) => list.includes(m));
        break;
      }
      case '--chrf':
        o.metrics = ['bleu', 'chrf'];
        break;
      case '--force':
        o.force = true;
        break;
      case '--score-only':
      case '-b':
        // What stdout always holds; accepted so sacreBLEU command lines work unchanged.
        break;
      case '--chrf-word-order':
      case '-cw':
        o.chrf.wordOrder = int(0);
        break;
      case '--chrf-lowercase':
        o.chrf.lowercase = true;
        break;
      case '--width':
      case '-w':
        o.width = int(0);
        if (o.width > 20) usage(`${name} must be at most 20, got ${o.width}`);
        break;
      default:
        if (a.startsWith('-')) usage(`unknown option "${a}"`);
        o.refFiles.push(a);
    }
  }
  if (o.refFiles.length === 0) usage('give at least one reference file');
  return o;
}

/** Offset and 1-based line of the first byte that is not valid UTF-8 (assumes the buffer failed isUtf8). */
function firstInvalidUtf8(buf: Uint8Array): { offset: number; line: number } {
  let line = 1;
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    let need = 0;
    let min = 0;
    if (b < 0x80) {
      if (b === 0x0a) line++;
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return { offset: i, line };
    }
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = buf[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return { offset: i, line };
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return { offset: i, line };
    i += need + 1;
  }
  return { offset: buf.length, line };
}

/**
 * Lines of a UTF-8 text as sacreBLEU reads them: split on \n only, a final newline ends the last line rather than
 * starting an empty one, trailing whitespace (\r included) stripped later by rstrip.
 */
export function textLines(buf: Uint8Array, what: string): string[] {
  if (!isUtf8(buf)) {
    const { offset, line } = firstInvalidUtf8(buf);
    throw new SigmaError('SGT_DATA_INVALID', `${what}: byte ${offset} (line ${line}) is not valid UTF-8: convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)`);
  }
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Python's rstrip() on each line, as sacreBLEU's CLI does (also removes the \r of CRLF files). */
function rstripLines(lines: string[]): string[] {
  return lines.map(pyRstrip);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : (c as Buffer));
  return Buffer.concat(chunks);
}

function bleuLine(s: BleuScore, o: BleuCommandOptions, nrefs: number): string {
  const w = o.width;
  let smooth: string = o.smooth;
  if (o.smooth === 'floor' || o.smooth === 'add-k') smooth += `[${formatFixed(o.smoothValue ?? (o.smooth === 'floor' ? 0.1 : 1), 2)}]`;
  const sig = `nrefs:${nrefs}|case:${o.lowercase ? 'lc' : 'mixed'}|eff:no|tok:${o.tokenize}|smooth:${smooth}|version:2.6.0-compatible`;
  const prec = s.precisions.map((p) => formatFixed(p, 1)).join('/');
  const ratio = s.refLen ? s.sysLen / s.refLen : 0;
  return `BLEU|${sig} = ${formatFixed(s.score, w)} ${prec} (BP = ${formatFixed(s.bp, 3)} ratio = ${formatFixed(ratio, 3)} hyp_len = ${s.sysLen} ref_len = ${s.refLen})`;
}

/**
 * Runs `sigmatrain bleu` on argv (the words after "bleu"): hypotheses from stdin, scores to stdout, the detailed
 * line to stderr when given. Returns the exit code; bad input throws a SigmaError naming the file and line.
 */
export async function bleuCommand(argv: readonly string[], stdin: NodeJS.ReadableStream, stdout: NodeJS.WritableStream, stderr?: NodeJS.WritableStream): Promise<number> {
  const o = parseBleuArgs(argv);
  if (o === 'help') {
    stdout.write(`${BLEU_USAGE}\n`);
    return 0;
  }
  if ((stdin as { isTTY?: boolean }).isTTY) throw new SigmaError('SGT_CLI_USAGE', 'sigmatrain bleu reads the hypotheses from standard input: sigmatrain bleu REF_FILE < HYP_FILE');
  const refs: string[][] = [];
  for (const f of o.refFiles) {
    let buf: Buffer;
    try {
      buf = await readFile(f);
    } catch (e) {
      throw new SigmaError('SGT_DATA_INVALID', `reference file ${f}: ${(e as Error).message}`, { cause: e });
    }
    refs.push(rstripLines(textLines(buf, `reference file ${f}`)));
  }
  const hyps = rstripLines(textLines(await readAll(stdin), 'hypotheses (stdin)'));
  const tab = hyps.findIndex((h) => h.includes('\t'));
  if (tab >= 0) {
    throw new SigmaError('SGT_DATA_INVALID', `hypotheses (stdin) line ${tab + 1} contains a tab: sacreBLEU would read tab-separated columns as several systems; give one system, one hypothesis per line`);
  }
  if (hyps.length === 0) throw new SigmaError('SGT_DATA_INVALID', 'hypotheses (stdin): no lines to score');
  refs.forEach((r, i) => {
    if (r.length !== hyps.length) {
      throw new SigmaError('SGT_DATA_INVALID', `reference file ${o.refFiles[i]} has ${r.length} lines but the hypotheses (stdin) have ${hyps.length}: each reference file needs one line per hypothesis`);
    }
  });
  // sacreBLEU's check for tokenized output, which lowers BLEU against detokenized references.
  const tokenizedLooking = hyps.filter((h) => h.endsWith(' .')).length;
  if (!o.force && o.metrics.includes('bleu') && tokenizedLooking >= 100) {
    stderr?.write(`warning: ${tokenizedLooking} hypotheses end in a tokenized period (" ."): BLEU expects detokenized text; --force silences this\n`);
  }
  const out: string[] = [];
  for (const m of o.metrics) {
    if (m === 'bleu') {
      const s = bleuFromStats(bleuStats(hyps, refs, { tokenize: o.tokenize, lowercase: o.lowercase }), { smooth: o.smooth, smoothValue: o.smoothValue });
      stderr?.write(`${bleuLine(s, o, refs.length)}\n`);
      out.push(formatFixed(s.score, o.width));
    } else {
      const score = chrfFromStats(chrfStats(hyps, refs, o.chrf), o.chrf);
      const name = `chrF2${'+'.repeat(o.chrf.wordOrder ?? 0)}`;
      stderr?.write(`${name}|nrefs:${refs.length}|case:${o.chrf.lowercase ? 'lc' : 'mixed'}|eff:yes|nc:6|nw:${o.chrf.wordOrder}|space:no|version:2.6.0-compatible = ${formatFixed(score, o.width)}\n`);
      out.push(formatFixed(score, o.width));
    }
  }
  stdout.write(`${out.join('\n')}\n`);
  return 0;
}
