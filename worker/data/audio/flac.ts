// FLAC for the speech readers: STREAMINFO and last-frame checks from a file's head and tail (enough to index a
// corpus without decoding it), and full decoding to Int16 with @wasm-audio-decoders/flac, verified by the MD5.

import { createHash } from 'node:crypto';
import { FLACDecoder } from '@wasm-audio-decoders/flac';

/** What STREAMINFO says about a stream. */
export interface StreamInfo {
  sampleRate: number;
  channels: number;
  bitsPerSample: number;
  /** Samples per channel; 0 means "unknown" in FLAC. */
  totalSamples: number;
  minBlockSize: number;
  maxBlockSize: number;
  /** Largest frame in bytes (0 = unknown). */
  maxFrameSize: number;
  /** MD5 of the decoded samples (little-endian, interleaved), hex; all zeros when the encoder did not set it. */
  md5: string;
  /** Byte offset of the first audio frame (after all metadata blocks), when the head held every block; else -1. */
  audioOffset: number;
}

/** Thrown for a stream that cannot be used; `kind` tells the index which skip reason it is. */
export class FlacError extends Error {
  constructor(readonly kind: 'unreadable' | 'truncated', message: string) {
    super(message);
    this.name = 'FlacError';
  }
}

/** Bytes to read from the head of a file: the 'fLaC' marker, STREAMINFO and, usually, every other metadata block. */
export const FLAC_HEAD_BYTES = 8192;

/** Size of an ID3v2 tag at the start of a buffer (some encoders put one before 'fLaC'), else 0. */
function id3Size(b: Uint8Array): number {
  if (b.length < 10 || b[0] !== 0x49 || b[1] !== 0x44 || b[2] !== 0x33) return 0; // "ID3"
  const syncsafe = ((b[6]! & 0x7f) << 21) | ((b[7]! & 0x7f) << 14) | ((b[8]! & 0x7f) << 7) | (b[9]! & 0x7f);
  return 10 + syncsafe + (b[5]! & 0x10 ? 10 : 0);
}

/** Parse STREAMINFO from the first bytes of a file (≥ 42 after any ID3v2 tag). Throws FlacError('unreadable'). */
export function parseStreamInfo(head: Uint8Array): StreamInfo {
  const o = id3Size(head);
  if (head.length < o + 42) throw new FlacError('unreadable', `file is ${head.length} bytes, too short for a FLAC header`);
  if (head[o] !== 0x66 || head[o + 1] !== 0x4c || head[o + 2] !== 0x61 || head[o + 3] !== 0x43) {
    throw new FlacError('unreadable', `no 'fLaC' marker at byte ${o} (not a FLAC file)`);
  }
  const type = head[o + 4]! & 0x7f;
  const len = (head[o + 5]! << 16) | (head[o + 6]! << 8) | head[o + 7]!;
  if (type !== 0 || len !== 34) throw new FlacError('unreadable', `first metadata block is type ${type}, length ${len}; expected STREAMINFO (type 0, 34 bytes)`);
  const s = o + 8;
  const u16 = (i: number): number => (head[s + i]! << 8) | head[s + i + 1]!;
  const u24 = (i: number): number => (head[s + i]! << 16) | (head[s + i + 1]! << 8) | head[s + i + 2]!;
  // Bytes 10..17: sample rate (20 bits) | channels−1 (3) | bits−1 (5) | total samples (36).
  const sampleRate = (head[s + 10]! << 12) | (head[s + 11]! << 4) | (head[s + 12]! >> 4);
  const channels = ((head[s + 12]! >> 1) & 0x07) + 1;
  const bitsPerSample = (((head[s + 12]! & 0x01) << 4) | (head[s + 13]! >> 4)) + 1;
  const totalSamples = (head[s + 13]! & 0x0f) * 2 ** 32 + ((head[s + 14]! << 24) >>> 0) + (head[s + 15]! << 16) + (head[s + 16]! << 8) + head[s + 17]!;
  const md5 = Buffer.from(head.subarray(s + 18, s + 34)).toString('hex');
  // Walk the remaining metadata blocks to find where the audio starts.
  let p = o + 4;
  let audioOffset = -1;
  while (p + 4 <= head.length) {
    const last = (head[p]! & 0x80) !== 0;
    const blen = (head[p + 1]! << 16) | (head[p + 2]! << 8) | head[p + 3]!;
    p += 4 + blen;
    if (last) {
      audioOffset = p;
      break;
    }
  }
  return { sampleRate, channels, bitsPerSample, totalSamples, minBlockSize: u16(0), maxBlockSize: u16(2), maxFrameSize: u24(7), md5, audioOffset };
}

// CRC-8 (poly x^8+x^2+x+1) over a frame header and CRC-16 (poly x^16+x^15+x^2+1) over a whole frame, as FLAC defines.
const CRC8 = new Uint8Array(256);
const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  CRC8[i] = c;
  let d = i << 8;
  for (let k = 0; k < 8; k++) d = d & 0x8000 ? ((d << 1) ^ 0x8005) & 0xffff : (d << 1) & 0xffff;
  CRC16[i] = d;
}
function crc16(b: Uint8Array, from: number, to: number): number {
  let c = 0;
  for (let i = from; i < to; i++) c = ((c << 8) & 0xffff) ^ CRC16[(c >> 8) ^ b[i]!]!;
  return c;
}

/** A frame header at b[p]: its first sample (for fixed block size, frame number × fixedBlock) and block size. */
function frameHeaderAt(b: Uint8Array, p: number, fixedBlock: number): { first: number; blockSize: number } | null {
  if (p + 6 > b.length || b[p] !== 0xff || (b[p + 1]! & 0xfe) !== 0xf8) return null;
  const variable = (b[p + 1]! & 1) === 1;
  const bsCode = b[p + 2]! >> 4;
  const srCode = b[p + 2]! & 0x0f;
  if (bsCode === 0 || srCode === 15 || (b[p + 3]! & 1) !== 0 || (b[p + 3]! >> 4) > 10 || ((b[p + 3]! >> 1) & 7) === 3) return null;
  // UTF-8-like coded frame/sample number.
  let q = p + 4;
  const lead = b[q]!;
  let n: number;
  let extra: number;
  if (lead < 0x80) [n, extra] = [lead, 0];
  else if ((lead & 0xe0) === 0xc0) [n, extra] = [lead & 0x1f, 1];
  else if ((lead & 0xf0) === 0xe0) [n, extra] = [lead & 0x0f, 2];
  else if ((lead & 0xf8) === 0xf0) [n, extra] = [lead & 0x07, 3];
  else if ((lead & 0xfc) === 0xf8) [n, extra] = [lead & 0x03, 4];
  else if ((lead & 0xfe) === 0xfc) [n, extra] = [lead & 0x01, 5];
  else if (lead === 0xfe) [n, extra] = [0, 6];
  else return null;
  q++;
  for (let k = 0; k < extra; k++, q++) {
    if (q >= b.length || (b[q]! & 0xc0) !== 0x80) return null;
    n = n * 64 + (b[q]! & 0x3f);
  }
  let blockSize: number;
  if (bsCode === 1) blockSize = 192;
  else if (bsCode <= 5) blockSize = 576 << (bsCode - 2);
  else if (bsCode === 6) blockSize = (b[q++] ?? 0) + 1;
  else if (bsCode === 7) blockSize = (((b[q] ?? 0) << 8) | (b[q + 1] ?? 0)) + 1, (q += 2);
  else blockSize = 256 << (bsCode - 8);
  if (srCode === 12) q += 1;
  else if (srCode === 13 || srCode === 14) q += 2;
  if (q >= b.length) return null;
  let c = 0;
  for (let i = p; i < q; i++) c = CRC8[c ^ b[i]!]!;
  if (c !== b[q]) return null;
  return { first: variable ? n : n * fixedBlock, blockSize };
}

/**
 * Check that a file ends with a complete last frame that closes the stream: scan `tail` (the last bytes of the
 * file) backwards for a frame header whose CRC-8 holds and whose frame, running to the end of the file, has a valid
 * CRC-16. Returns the number of samples the stream really holds (the last frame's end). Throws
 * FlacError('truncated') when no such frame is found, or when it ends before STREAMINFO's total.
 */
export function checkLastFrame(tail: Uint8Array, info: StreamInfo): number {
  const fixed = info.minBlockSize;
  for (let p = tail.length - 8; p >= 0; p--) {
    if (tail[p] !== 0xff) continue;
    const h = frameHeaderAt(tail, p, fixed);
    if (!h) continue;
    const want = (tail[tail.length - 2]! << 8) | tail[tail.length - 1]!;
    if (crc16(tail, p, tail.length - 2) !== want) continue;
    const end = h.first + h.blockSize;
    if (info.totalSamples > 0 && end < info.totalSamples) {
      throw new FlacError('truncated', `audio ends at sample ${end} but STREAMINFO announces ${info.totalSamples} (file cut short)`);
    }
    return info.totalSamples > 0 ? info.totalSamples : end;
  }
  throw new FlacError('truncated', `no complete frame at the end of the file (cut short, or trailing bytes after the audio)`);
}

/**
 * Split the audio of a whole file into frames: each frame starts with a header whose CRC-8 holds and ends where the
 * next frame (the one that continues the sample count) starts, or at the end of the file, with a CRC-16 that holds.
 * Throws FlacError: 'unreadable' when the sync is lost, 'truncated' when the last frame is cut.
 */
export function splitFrames(bytes: Uint8Array, info: StreamInfo): Uint8Array[] {
  if (info.audioOffset < 0) throw new FlacError('unreadable', 'metadata blocks run past the end of the file');
  const frames: Uint8Array[] = [];
  let pos = info.audioOffset;
  const fixed = info.minBlockSize;
  while (pos < bytes.length) {
    const h = frameHeaderAt(bytes, pos, fixed);
    if (!h) throw new FlacError('unreadable', `no valid frame header at byte ${pos} (frame ${frames.length})`);
    const nextFirst = h.first + h.blockSize;
    let end = -1;
    for (let q = pos + 8; q + 6 <= bytes.length; q++) {
      if (bytes[q] !== 0xff || (bytes[q + 1]! & 0xfe) !== 0xf8) continue;
      const n = frameHeaderAt(bytes, q, fixed);
      if (!n || n.first !== nextFirst) continue;
      if (crc16(bytes, pos, q - 2) === ((bytes[q - 2]! << 8) | bytes[q - 1]!)) {
        end = q;
        break;
      }
    }
    if (end < 0) {
      if (crc16(bytes, pos, bytes.length - 2) !== ((bytes[bytes.length - 2]! << 8) | bytes[bytes.length - 1]!)) {
        throw new FlacError('truncated', `frame ${frames.length} at byte ${pos} runs past the end of the file (cut short)`);
      }
      end = bytes.length;
    }
    frames.push(bytes.subarray(pos, end));
    pos = end;
  }
  return frames;
}

/** Bytes of the tail that checkLastFrame needs: the largest frame plus slack (64 KiB when the encoder did not say). */
export function tailBytes(info: StreamInfo): number {
  return (info.maxFrameSize > 0 ? info.maxFrameSize : 65536) + 64;
}

/** Decoded mono 16-bit audio. */
export interface DecodedAudio {
  samples: Int16Array;
  sampleRate: number;
  info: StreamInfo;
}

/** The format every speech reader requires; anything else is an error naming the file. */
export const SPEECH_FORMAT = { sampleRate: 16000, channels: 1, bitsPerSample: 16 } as const;

/** A message naming what differs from 16 kHz mono 16-bit, or null when the stream has that format. */
export function formatMismatch(info: Pick<StreamInfo, 'sampleRate' | 'channels' | 'bitsPerSample'>): string | null {
  const bad: string[] = [];
  if (info.sampleRate !== SPEECH_FORMAT.sampleRate) bad.push(`sample rate ${info.sampleRate} Hz`);
  if (info.channels !== SPEECH_FORMAT.channels) bad.push(`${info.channels} channels`);
  if (info.bitsPerSample !== SPEECH_FORMAT.bitsPerSample) bad.push(`${info.bitsPerSample}-bit samples`);
  return bad.length ? `${bad.join(', ')}; expected 16000 Hz mono 16-bit (convert with: sox in.flac -r 16000 -c 1 -b 16 out.flac)` : null;
}

/**
 * One FLAC decoder (libFLAC in WebAssembly) reused across files; one per thread. Decoding is exact: the library
 * returns float32 samples v/32767, turned back into integers by rounding; the result is checked against
 * STREAMINFO's sample count and, when the encoder wrote one, its MD5 (so a wrong scale or a corrupt frame is caught).
 */
export class FlacReader {
  private decoder: FLACDecoder | null = null;

  private async ready(): Promise<FLACDecoder> {
    if (!this.decoder) {
      this.decoder = new FLACDecoder();
      await this.decoder.ready;
    }
    return this.decoder;
  }

  /** Decode a whole mono file. Throws FlacError for a broken/truncated stream; format checks are the caller's. */
  async decode(bytes: Uint8Array, opts: { verifyMd5?: boolean } = {}): Promise<DecodedAudio> {
    const info = parseStreamInfo(bytes);
    const dec = await this.ready();
    // Frames are split here rather than by the library's own parser, which drops a last frame of a few bytes (the
    // 12-byte frame of digital silence sox writes at the end of a padded file).
    const frames = splitFrames(bytes, info);
    // FLAC frames decode independently, so the decoder is not reset between files (re-instantiating the
    // WebAssembly module per file tripled the decode time); it is reset after any failure, and the MD5 check below
    // would catch state leaking from one file into the next.
    let out;
    try {
      out = await dec.decodeFrames(frames);
    } catch (e) {
      await dec.reset();
      throw new FlacError('unreadable', `decoder failed: ${(e as Error).message}`);
    }
    try {
      return this.check(out, info, opts.verifyMd5 ?? true);
    } catch (e) {
      await dec.reset();
      throw e;
    }
  }

  private check(out: Awaited<ReturnType<FLACDecoder['decodeFrames']>>, info: StreamInfo, verifyMd5: boolean): DecodedAudio {
    if (out.errors.length > 0) {
      const e = out.errors[0]!;
      throw new FlacError('unreadable', `decoder error: ${e.message} (frame ${e.frameNumber}, byte ${e.inputBytes})`);
    }
    if (out.channelData.length !== 1 && out.samplesDecoded > 0) {
      throw new FlacError('unreadable', `decoded ${out.channelData.length} channels; expected mono`);
    }
    const n = out.samplesDecoded;
    if (info.totalSamples > 0 && n !== info.totalSamples) {
      throw new FlacError('truncated', `decoded ${n} samples but STREAMINFO announces ${info.totalSamples} (file cut short or corrupt)`);
    }
    if (n === 0) throw new FlacError('truncated', 'no audio frames');
    const x = out.channelData[0]!;
    const samples = new Int16Array(n);
    for (let i = 0; i < n; i++) samples[i] = Math.round(x[i]! * 32767);
    if (verifyMd5 && info.bitsPerSample === 16 && !/^0+$/.test(info.md5)) {
      const got = createHash('md5').update(new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength)).digest('hex');
      if (got !== info.md5) throw new FlacError('unreadable', `decoded samples fail the STREAMINFO MD5 check (${got} ≠ ${info.md5})`);
    }
    return { samples, sampleRate: out.sampleRate, info };
  }

  /** Release the WebAssembly memory. */
  close(): void {
    this.decoder?.free();
    this.decoder = null;
  }
}
