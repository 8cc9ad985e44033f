// The safetensors file format (u64 LE header length, JSON header padded to 8 bytes, raw LE tensor data), written and
// read with plain typed arrays; every malformed file is an SGT_CHECKPOINT_INVALID error naming the file and the tensor.
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { SigmaError } from '../errors.js';

/** Element types we write and read. Upstream also has F16, BF16 and FP8 types; reading those is refused by name. */
export type Dtype = 'BOOL' | 'U8' | 'I8' | 'I16' | 'U16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

export type TypedData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor to write: row-major data, `shape` [] for a scalar; dtype defaults to the array's own type. */
export interface TensorInput {
  shape: readonly number[];
  data: TypedData;
  dtype?: Dtype;
}

export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TypedData;
}

export interface SafetensorsContents {
  /** In file (data offset) order. Every `data` is a fresh, aligned copy that does not share the file's buffer. */
  tensors: Map<string, Tensor>;
  /** The header's `__metadata__` (string → string), {} when absent. */
  metadata: Record<string, string>;
}

interface DtypeInfo {
  bytes: number;
  /** Position in upstream's Dtype enum (ascending alignment); its writer lays tensors out by this, descending, then by name. */
  rank: number;
  make: (n: number) => TypedData;
}

const DTYPES: Record<Dtype, DtypeInfo> = {
  BOOL: { bytes: 1, rank: 0, make: (n) => new Uint8Array(n) },
  U8: { bytes: 1, rank: 1, make: (n) => new Uint8Array(n) },
  I8: { bytes: 1, rank: 2, make: (n) => new Int8Array(n) },
  I16: { bytes: 2, rank: 5, make: (n) => new Int16Array(n) },
  U16: { bytes: 2, rank: 6, make: (n) => new Uint16Array(n) },
  I32: { bytes: 4, rank: 9, make: (n) => new Int32Array(n) },
  U32: { bytes: 4, rank: 10, make: (n) => new Uint32Array(n) },
  F32: { bytes: 4, rank: 11, make: (n) => new Float32Array(n) },
  F64: { bytes: 8, rank: 12, make: (n) => new Float64Array(n) },
  I64: { bytes: 8, rank: 13, make: (n) => new BigInt64Array(n) },
  U64: { bytes: 8, rank: 14, make: (n) => new BigUint64Array(n) },
};

/** Upstream refuses headers over 100 MB; so do we (a corrupt length must not make us allocate gigabytes). */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

function invalid(message: string): never {
  throw new SigmaError('SGT_CHECKPOINT_INVALID', message);
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') invalid(`safetensors data is little-endian and this host is ${endianness()}; byte swapping is not implemented`);
}

function dtypeOfArray(data: TypedData): Dtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Uint16Array) return 'U16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint8Array) return 'U8';
  if (data instanceof BigInt64Array) return 'I64';
  return 'U64';
}

/** Product of a shape's dims ([] → 1), or undefined when a dim is not a non-negative safe integer or it overflows. */
function elementCount(shape: unknown): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Prepared {
  /** 8-byte length plus the padded JSON header. */
  head: Buffer;
  /** The tensors' bytes in file order (views on the callers' arrays, not copies). */
  parts: Uint8Array[];
  byteLength: number;
}

/**
 * Lays out a header the way upstream's writer does: tensors sorted by dtype rank (descending) then by UTF-8 name,
 * `__metadata__` first when given, keys dtype/shape/data_offsets, compact JSON, spaces up to a multiple of 8.
 */
function prepare(tensors: Iterable<[string, TensorInput]>, metadata: Record<string, string> | undefined, target: string): Prepared {
  assertLittleEndian();
  const rows: { name: string; dtype: Dtype; shape: number[]; bytes: Uint8Array }[] = [];
  for (const [name, t] of tensors) {
    if (name === METADATA_KEY) invalid(`${target}: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    const natural = dtypeOfArray(t.data);
    const dtype = t.dtype ?? natural;
    const info = DTYPES[dtype];
    if (!info) invalid(`${target}: tensor "${name}": unknown dtype ${String(dtype)}`);
    const compatible = dtype === natural || (dtype === 'BOOL' && natural === 'U8');
    if (!compatible) invalid(`${target}: tensor "${name}": dtype ${dtype} does not match its ${t.data.constructor.name}`);
    const n = elementCount(t.shape);
    if (n === undefined) invalid(`${target}: tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    if (n !== t.data.length) invalid(`${target}: tensor "${name}": shape ${JSON.stringify(t.shape)} has ${n} elements but the data has ${t.data.length}`);
    rows.push({ name, dtype, shape: [...t.shape], bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
  }
  rows.sort((a, b) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || compareUtf8(a.name, b.name));
  for (let i = 1; i < rows.length; i++) {
    if (rows[i].name === rows[i - 1].name) invalid(`${target}: tensor "${rows[i].name}" is given twice`);
  }

  // Build the JSON by hand so key order is fixed (an object would move integer-like tensor names such as "0" first).
  const entries: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') invalid(`${target}: __metadata__["${k}"] must be a string, got ${typeof v}`);
    }
    entries.push(`${JSON.stringify(METADATA_KEY)}:${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const r of rows) {
    const end = offset + r.bytes.byteLength;
    entries.push(`${JSON.stringify(r.name)}:{"dtype":"${r.dtype}","shape":${JSON.stringify(r.shape)},"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = Buffer.from(`{${entries.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  return { head, parts: rows.map((r) => r.bytes), byteLength: head.length + offset };
}

function entriesOf(tensors: Map<string, TensorInput> | Iterable<[string, TensorInput]>): Iterable<[string, TensorInput]> {
  return tensors instanceof Map ? tensors.entries() : tensors;
}

/** The whole file in memory (small files, tests). For checkpoints use writeSafetensors, which streams. */
export function encodeSafetensors(
  tensors: Map<string, TensorInput> | Iterable<[string, TensorInput]>,
  metadata?: Record<string, string>,
): Buffer {
  const p = prepare(entriesOf(tensors), metadata, 'safetensors buffer');
  return Buffer.concat([p.head, ...p.parts], p.byteLength);
}

export interface WrittenFile {
  bytes: number;
  /** Hex sha256 of the file's bytes, computed while writing. */
  sha256: string;
}

const DIRECT_WRITE_BYTES = 1 << 20; // parts this large go straight to the file; smaller ones are batched
// Large parts go in slices of at most this: hashing a slice holds the event loop for ~4 ms (sha256 at ~0.5 GB/s).
const MAX_WRITE_BYTES = 2 << 20;

/**
 * Streams a safetensors file to `path` (created or truncated), hashing as it goes; with `fsync` (default true) the
 * data is on disk when the promise resolves. Batches small tensors, never copies large ones.
 */
export async function writeSafetensors(
  path: string,
  tensors: Map<string, TensorInput> | Iterable<[string, TensorInput]>,
  opts: { metadata?: Record<string, string>; fsync?: boolean } = {},
): Promise<WrittenFile> {
  const p = prepare(entriesOf(tensors), opts.metadata, path);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    const stage = Buffer.allocUnsafe(DIRECT_WRITE_BYTES * 4);
    let staged = 0;
    const writeAll = async (bytes: Uint8Array): Promise<void> => {
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done);
        if (bytesWritten <= 0) throw new Error(`write to ${path} made no progress`);
        done += bytesWritten;
      }
    };
    const put = async (bytes: Uint8Array): Promise<void> => {
      const written = writeAll(bytes); // the write runs on libuv's pool while we hash the same (unchanging) bytes
      hash.update(bytes);
      await written;
    };
    const drain = async (): Promise<void> => {
      if (staged > 0) await put(stage.subarray(0, staged));
      staged = 0;
    };
    for (const part of [p.head, ...p.parts]) {
      if (part.byteLength >= DIRECT_WRITE_BYTES) {
        await drain();
        for (let at = 0; at < part.byteLength; at += MAX_WRITE_BYTES) {
          await put(part.subarray(at, Math.min(part.byteLength, at + MAX_WRITE_BYTES)));
        }
      } else {
        if (staged + part.byteLength > stage.length) await drain();
        stage.set(part, staged);
        staged += part.byteLength;
      }
    }
    await drain();
    if (opts.fsync !== false) await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes: p.byteLength, sha256: hash.digest('hex') };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates a whole safetensors file held in memory. `source` names it in errors (a path, usually).
 * Checks: the length prefix fits the file, the header is UTF-8 JSON of the right shape, every dtype is known, the
 * data offsets tile the data section from 0 to its end without gaps or overlaps, and bytes = elements × dtype size.
 */
export function decodeSafetensors(bytes: Uint8Array, source: string): SafetensorsContents {
  assertLittleEndian();
  if (bytes.byteLength < 8) invalid(`${source}: ${bytes.byteLength} bytes is shorter than the 8-byte header length (truncated or not safetensors)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(bytes.byteLength - 8)) {
    invalid(`${source}: header length ${declared} runs past the end of the ${bytes.byteLength}-byte file (truncated or not safetensors)`);
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) invalid(`${source}: header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    invalid(`${source}: the ${headerLength}-byte header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    invalid(`${source}: the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(header)) invalid(`${source}: the header must be a JSON object, got ${Array.isArray(header) ? 'an array' : typeof header}`);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const rows: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry)) invalid(`${source}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') invalid(`${source}: __metadata__["${k}"] must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${source}: tensor "${name}"`;
    if (!isPlainObject(entry)) invalid(`${where}: header entry must be an object, got ${JSON.stringify(entry)}`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPES, dtype)) {
      invalid(`${where}: dtype ${JSON.stringify(dtype)} is not supported (supported: ${Object.keys(DTYPES).join(', ')})`);
    }
    const n = elementCount(shape);
    if (n === undefined) invalid(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      invalid(`${where}: data_offsets ${JSON.stringify(offsets)} must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) invalid(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLength) invalid(`${where}: data_offsets [${begin}, ${end}] run past the ${dataLength}-byte data section (truncated?)`);
    const want = n * DTYPES[dtype as Dtype].bytes;
    if (end - begin !== want) {
      invalid(`${where}: ${dtype} ${JSON.stringify(shape)} needs ${want} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    rows.push({ name, dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }

  // Upstream accepts any header order but requires the offsets, sorted, to tile the data section exactly.
  rows.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const r of rows) {
    if (r.begin !== cursor) {
      invalid(`${source}: tensor "${r.name}": data_offsets [${r.begin}, ${r.end}] ${r.begin > cursor ? 'leave a gap after' : 'overlap'} byte ${cursor}`);
    }
    cursor = r.end;
  }
  if (cursor !== dataLength) invalid(`${source}: the tensors cover ${cursor} bytes but the data section has ${dataLength} (trailing bytes)`);

  const tensors = new Map<string, Tensor>();
  for (const r of rows) {
    const info = DTYPES[r.dtype];
    const data = info.make((r.end - r.begin) / info.bytes);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + r.begin, dataStart + r.end));
    tensors.set(r.name, { dtype: r.dtype, shape: r.shape, data });
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file (see decodeSafetensors); errors name `path`. */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `${path}: cannot be read (${(e as Error).message})`, { cause: e });
  }
  return decodeSafetensors(bytes, path);
}
