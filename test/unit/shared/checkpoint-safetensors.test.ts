// safetensors writer and reader: round trips, byte layout from the spec and upstream's own vectors, the hand-built
// fixtures (test/fixtures/safetensors), and every kind of malformed file → SGT_CHECKPOINT_INVALID naming file and tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SigmaError } from '../../../shared/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  type Dtype,
  type TensorInput,
  type TypedData,
} from '../../../shared/checkpoint/safetensors.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/safetensors/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sgt-safetensors-'));

/** Asserts `fn` throws SGT_CHECKPOINT_INVALID whose message contains every one of `parts`. */
async function rejectsNaming(fn: () => unknown, parts: string[]): Promise<void> {
  await assert.rejects(async () => fn(), (e: unknown) => {
    assert.ok(e instanceof SigmaError, `expected SigmaError, got ${String(e)}`);
    assert.equal(e.code, 'SGT_CHECKPOINT_INVALID');
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should name ${JSON.stringify(p)}`);
    return true;
  });
}

function f32(values: number[]): Float32Array {
  return Float32Array.from(values);
}

/** A file from parts: u64 LE length of `header` (taken as given, no padding), the header text, then `data`. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), declaredLength?: number): Buffer {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength ?? h.length));
  return Buffer.concat([len, h, data]);
}

test('round trip: scalars, empty tensors, odd lengths, several dtypes; header padded to a multiple of 8', async () => {
  const tensors = new Map<string, TensorInput>([
    ['w', { shape: [3, 5], data: f32(Array.from({ length: 15 }, (_, i) => i * 0.37 - 2)) }],
    ['scalar', { shape: [], data: f32([Math.PI]) }],
    ['empty', { shape: [0], data: new Float32Array(0) }],
    ['empty2d', { shape: [4, 0, 2], data: new Float32Array(0) }],
    ['odd', { shape: [1, 7, 1], data: f32([1, -2, 3, -4, 5, -6, 7]) }],
    ['nan-inf', { shape: [3], data: f32([NaN, Infinity, -0]) }],
    ['ids', { shape: [2], data: Int32Array.from([-7, 2 ** 31 - 1]) }],
    ['big', { shape: [2], data: BigInt64Array.from([-(2n ** 62n), 5n]) }],
    ['f64', { shape: [1, 1], data: Float64Array.from([1e-300]) }],
    ['bytes', { shape: [3], data: Uint8Array.from([0, 128, 255]) }],
    ['flags', { shape: [2], data: Uint8Array.from([0, 1]), dtype: 'BOOL' }],
  ]);
  for (let nameLength = 1; nameLength <= 8; nameLength++) {
    // Vary the header length so every padding amount 0..7 is exercised.
    const named = new Map([...tensors, ['x'.repeat(nameLength), { shape: [1], data: f32([nameLength]) }]]);
    const path = join(dir, `rt-${nameLength}.safetensors`);
    const written = await writeSafetensors(path, named, { metadata: { note: 'héllo' } });
    const bytes = readFileSync(path);
    assert.equal(written.bytes, bytes.length);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0, `header length ${n} is a multiple of 8`);
    assert.equal(bytes.subarray(8, 8 + n).toString('utf8').trimEnd().at(-1), '}');
    assert.deepEqual(encodeSafetensors(named, { note: 'héllo' }), bytes, 'encode and write agree');
    const back = await readSafetensors(path);
    assert.deepEqual(back.metadata, { note: 'héllo' });
    assert.equal(back.tensors.size, named.size);
    for (const [name, t] of named) {
      const got = back.tensors.get(name);
      assert.ok(got, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.equal(got.dtype, t.dtype ?? got.dtype, name);
      assert.equal(got.data.constructor, t.data.constructor, name);
      assert.deepEqual(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), name);
    }
  }
});

test('byte layout of a tiny file, computed here from the spec', () => {
  // Two F32 tensors given out of order: the writer sorts by name ("a" before "b").
  const out = encodeSafetensors(new Map([
    ['b', { shape: [], data: f32([-2]) }],
    ['a', { shape: [2], data: f32([1, 0.5]) }],
  ]));
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}';
  assert.equal(json.length, 107);
  const header = json + ' '.repeat(5); // 107 → 112, a multiple of 8
  const expected = Buffer.concat([
    Buffer.from([112, 0, 0, 0, 0, 0, 0, 0]),
    Buffer.from(header, 'ascii'),
    // IEEE-754 single, little-endian: 1.0 = 0x3f800000, 0.5 = 0x3f000000, -2.0 = 0xc0000000
    Buffer.from([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0xc0]),
  ]);
  assert.deepEqual(out, expected);
});

test("upstream's own serialisation vectors are reproduced byte for byte", () => {
  // Byte strings that the upstream crate's tests (safetensors/src/tensor.rs) assert its writer emits; see the fixture README.
  const attn = f32([0, 1, 2, 3, 4, 5]);
  assert.equal(
    encodeSafetensors(new Map([['attn.0', { shape: [1, 2, 3], data: attn }]])).toString('hex'),
    '40000000000000007b226174746e2e30223a7b226474797065223a22463332222c227368617065223a5b312c322c335d2c22646174615f6f666673657473223a5b302c32345d7d7d000000000000803f0000004000004040000080400000a040',
  );
  assert.equal(
    encodeSafetensors(new Map([['attn0', { shape: [1, 1, 2, 3], data: attn }]])).toString('hex'),
    '48000000000000007b226174746e30223a7b226474797065223a22463332222c227368617065223a5b312c312c322c335d2c22646174615f6f666673657473223a5b302c32345d7d7d20202020202020000000000000803f0000004000004040000080400000a040',
  );
  assert.equal(encodeSafetensors(new Map()).toString('hex'), '08000000000000007b7d202020202020');
  assert.equal(
    encodeSafetensors(new Map(), { framework: 'pt' }).toString('hex'),
    '28000000000000007b225f5f6d657461646174615f5f223a7b226672616d65776f726b223a227074227d7d2020202020',
  );
});

interface Expected {
  sha256: string;
  bytes: number;
  order?: string[];
  metadata?: Record<string, string>;
  tensors: Record<string, { dtype: Dtype; shape: number[]; values: (number | string)[] }>;
}
const expected = JSON.parse(readFileSync(join(fixtures, 'expected.json'), 'utf8')) as Record<string, Expected>;

function typed(dtype: Dtype, values: (number | string)[]): TypedData {
  switch (dtype) {
    case 'F32': return Float32Array.from(values as number[]);
    case 'F64': return Float64Array.from(values as number[]);
    case 'I32': return Int32Array.from(values as number[]);
    case 'I64': return BigInt64Array.from((values as string[]).map((v) => BigInt(v)));
    case 'U8': return Uint8Array.from(values as number[]);
    default: throw new Error(`fixture dtype ${dtype} not handled by this test`);
  }
}

for (const file of ['reference.safetensors', 'misaligned.safetensors']) {
  test(`the hand-built fixture ${file} reads back with the expected values`, async () => {
    const e = expected[file];
    const bytes = readFileSync(join(fixtures, file));
    assert.equal(bytes.length, e.bytes);
    const got = await readSafetensors(join(fixtures, file));
    assert.deepEqual(got.metadata, e.metadata ?? {});
    assert.deepEqual([...got.tensors.keys()].sort(), Object.keys(e.tensors).sort());
    if (e.order) assert.deepEqual([...got.tensors.keys()], e.order, 'tensors come back in file order');
    for (const [name, t] of Object.entries(e.tensors)) {
      const g = got.tensors.get(name)!;
      assert.equal(g.dtype, t.dtype, name);
      assert.deepEqual(g.shape, t.shape, name);
      assert.equal(g.data.byteOffset % 8, 0, `${name} is an aligned copy`);
      const want = typed(t.dtype, t.values);
      assert.equal(g.data.length, want.length, name);
      for (let i = 0; i < want.length; i++) assert.ok(Object.is(g.data[i], want[i]), `${name}[${i}]: ${g.data[i]} vs ${want[i]}`);
    }
  });
}

test('our writer reproduces reference.safetensors byte for byte from its values', () => {
  const e = expected['reference.safetensors'];
  // Insertion order deliberately differs from the file's: the writer must sort like upstream (dtype rank, then UTF-8 name).
  const tensors = new Map(Object.entries(e.tensors).reverse().map(([name, t]) => [name, { shape: t.shape, data: typed(t.dtype, t.values) }]));
  const out = encodeSafetensors(tensors, e.metadata);
  assert.deepEqual(out, readFileSync(join(fixtures, 'reference.safetensors')));
});

test('writer refuses inconsistent input, naming the tensor', async () => {
  const p = join(dir, 'bad-input.safetensors');
  await rejectsNaming(() => writeSafetensors(p, new Map([['w', { shape: [2, 2], data: f32([1, 2, 3]) }]])), [p, '"w"', '4 elements', '3']);
  await rejectsNaming(() => writeSafetensors(p, new Map([['w', { shape: [-1], data: f32([1]) }]])), ['"w"', 'shape [-1]']);
  await rejectsNaming(() => writeSafetensors(p, new Map([['w', { shape: [1], data: f32([1]), dtype: 'I32' as Dtype }]])), ['"w"', 'I32', 'Float32Array']);
  await rejectsNaming(() => writeSafetensors(p, new Map([['__metadata__', { shape: [1], data: f32([1]) }]])), ['__metadata__']);
});

test('malformed files → SGT_CHECKPOINT_INVALID naming the file and the tensor', async () => {
  const good = encodeSafetensors(new Map([
    ['alpha', { shape: [2, 2], data: f32([1, 2, 3, 4]) }],
    ['beta', { shape: [3], data: f32([5, 6, 7]) }],
  ]));
  const n = Number(good.readBigUInt64LE(0));
  const cases: [string, Buffer, string[]][] = [
    ['empty file', Buffer.alloc(0), ['0 bytes', 'shorter than the 8-byte header length']],
    ['truncated in the length', good.subarray(0, 5), ['5 bytes']],
    ['truncated in the header', good.subarray(0, 8 + n - 10), ['header length', 'runs past the end']],
    ['truncated in the data', good.subarray(0, good.length - 3), ['tensor "beta"', 'run past', 'data section']],
    ['header length past the end', Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), good.subarray(8)]), ['header length 4294967295', 'runs past the end']],
    ['header length of 2^64-1', Buffer.concat([Buffer.alloc(8, 0xff), good.subarray(8)]), ['header length 18446744073709551615']],
    ['trailing bytes', Buffer.concat([good, Buffer.alloc(4)]), ['cover 28 bytes', 'data section has 32']],
    ['bad JSON', rawFile('{"alpha": {"dtype": "F32", ', new Uint8Array(16)), ['not valid JSON']],
    ['not an object', rawFile('[1, 2, 3]'), ['must be a JSON object', 'array']],
    ['not UTF-8', rawFile('{"ab":1}').fill(0xff, 10, 11), ['not valid UTF-8']],
    ['offsets out of bounds', rawFile('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}', new Uint8Array(8)), ['tensor "t"', '[0, 800]', 'run past the 8-byte data section']],
    ['offsets reversed', rawFile('{"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', new Uint8Array(8)), ['tensor "t"', 'end before they begin']],
    ['offsets with a gap', rawFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)), ['tensor "t"', 'gap']],
    ['offsets overlapping', rawFile('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', new Uint8Array(8)), ['tensor "u"', 'overlap']],
    ['dtype × shape ≠ byte length', rawFile('{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)), ['tensor "t"', 'needs 12 bytes', 'hold 8']],
    ['unknown dtype', rawFile('{"t":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}', new Uint8Array(8)), ['tensor "t"', '"F16"', 'not supported']],
    ['bad shape', rawFile('{"t":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', new Uint8Array(8)), ['tensor "t"', 'shape [2.5]']],
    ['bad offsets', rawFile('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', new Uint8Array(8)), ['tensor "t"', 'data_offsets [0]']],
    ['bad metadata', rawFile('{"__metadata__":{"k":3}}'), ['__metadata__["k"]', 'must be a string']],
  ];
  for (const [what, bytes, parts] of cases) {
    const path = join(dir, `corrupt-${what.replace(/[^a-z0-9]+/gi, '-')}.safetensors`);
    writeFileSync(path, bytes);
    await rejectsNaming(() => readSafetensors(path), [path, ...parts]).catch((e: Error) => {
      throw new Error(`${what}: ${e.message}`);
    });
  }
  await rejectsNaming(() => readSafetensors(join(dir, 'no-such.safetensors')), ['no-such.safetensors', 'cannot be read']);
  assert.throws(() => decodeSafetensors(good.subarray(0, 3), 'in-memory'), /in-memory/);
});
