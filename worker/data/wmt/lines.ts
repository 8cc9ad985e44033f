// Streaming line reader for corpus files: yields decoded lines without holding the file, and turns undecodable
// UTF-8 into an error naming the file and the byte offset of the first bad byte.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { SigmaError } from '../../../shared/errors.js';

const NL = 0x0a;

/**
 * Offset (within buf[start, end)) of the first byte that does not belong to a well-formed UTF-8 sequence, or -1.
 * TextDecoder({fatal}) says only *that* a buffer is bad; users need *where*, so we locate it ourselves
 * (RFC 3629 table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
 */
export function firstInvalidUtf8(buf: Uint8Array, start = 0, end = buf.length): number {
  let i = start;
  while (i < end) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      if (i + k >= end) return i; // truncated sequence at end of line/file
      const c = buf[i + k]!;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

export interface LineRange {
  /** First byte to read (default 0). */
  start?: number;
  /** One past the last byte to read (default: end of file). A range must start at a line start. */
  end?: number;
}

export interface Line {
  text: string;
  /** Byte offset of the line's first byte in the file. */
  offset: number;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeLine(file: string, buf: Buffer, s: number, e: number, fileOffset: number): string {
  // Strip one trailing CR (files written on Windows); a UTF-8 BOM at the start of the file is dropped.
  if (e > s && buf[e - 1] === 0x0d) e--;
  if (fileOffset === 0 && e - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) {
    s += 3;
    fileOffset += 3;
  }
  try {
    return decoder.decode(buf.subarray(s, e));
  } catch {
    const bad = firstInvalidUtf8(buf, s, e);
    const at = fileOffset + Math.max(0, bad - s);
    throw new SigmaError(
      'SGT_CORPUS_ENCODING',
      `${file}: invalid UTF-8 at byte offset ${at} (byte 0x${buf[s + Math.max(0, bad - s)]?.toString(16).padStart(2, '0')}); ` +
        `convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or remove the line`,
    );
  }
}

/**
 * Lines of a UTF-8 text file, streamed in 1 MiB chunks. A final line without a newline is yielded too;
 * the empty string after a final newline is not (so "a\nb\n" has two lines, like Python's readlines).
 */
export async function* readLines(file: string, range: LineRange = {}): AsyncGenerator<Line> {
  const start = range.start ?? 0;
  const stream = createReadStream(file, {
    start,
    ...(range.end !== undefined ? { end: range.end - 1 } : {}),
    highWaterMark: 1 << 20,
  });
  let carry: Buffer | null = null;
  let carryOffset = start; // file offset of carry[0]
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    let s = 0;
    for (;;) {
      const nl = buf.indexOf(NL, s);
      if (nl < 0) break;
      yield { text: decodeLine(file, buf, s, nl, carryOffset + s), offset: carryOffset + s };
      s = nl + 1;
    }
    carry = s < buf.length ? buf.subarray(s) : null;
    carryOffset += s;
  }
  if (carry && carry.length > 0) yield { text: decodeLine(file, carry, 0, carry.length, carryOffset), offset: carryOffset };
}

/** Throws SGT_CORPUS_EMPTY when the file has no bytes (a truncated download, a failed extraction). */
export async function assertNonEmpty(file: string): Promise<number> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (e) {
    throw new SigmaError('SGT_CORPUS_NOT_FOUND', `${file}: cannot read (${(e as Error).message})`, { cause: e });
  }
  if (size === 0) {
    throw new SigmaError('SGT_CORPUS_EMPTY', `${file} is empty (0 bytes); re-download or re-extract it, or remove it from the corpus`);
  }
  return size;
}

/**
 * Byte offsets of line starts, one every `every` lines, plus the total line count: one pass of memchr over the
 * file without decoding. Used to cut a corpus into line ranges for worker threads.
 */
export async function indexLineStarts(file: string, every: number): Promise<{ lines: number; starts: number[]; size: number }> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 });
  const starts: number[] = [0];
  let lines = 0;
  let pos = 0;
  let lastByte = NL;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let s = 0;
    for (;;) {
      const nl = chunk.indexOf(NL, s);
      if (nl < 0) break;
      lines++;
      if (lines % every === 0) starts.push(pos + nl + 1);
      s = nl + 1;
    }
    if (chunk.length > 0) lastByte = chunk[chunk.length - 1]!;
    pos += chunk.length;
  }
  if (pos > 0 && lastByte !== NL) lines++; // final line without newline
  if (starts[starts.length - 1] === pos && pos > 0) starts.pop(); // a start at EOF is no line
  return { lines, starts, size: pos };
}
