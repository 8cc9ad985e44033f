// Tests for the FLAC reader: STREAMINFO fields, exact decoding (checked against the encoder's MD5, computed here
// independently), the reference vectors' samples, truncation and corruption detection, the 16 kHz mono check.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import {
  FlacError,
  FlacReader,
  checkLastFrame,
  formatMismatch,
  parseStreamInfo,
  tailBytes,
} from '../../../../../worker/data/audio/flac.js';

interface RefCase { file: string; flacBase64: string; sampleRate: number; pcmInt16: number[] }
const ref = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../../../../test/fixtures/speech_features.json', import.meta.url)), 'utf8'),
) as { cases: RefCase[] };
const flacOf = (c: RefCase): Uint8Array => new Uint8Array(Buffer.from(c.flacBase64, 'base64'));

const reader = new FlacReader();
after(() => reader.close());

describe('parseStreamInfo', () => {
  for (const c of ref.cases) {
    it(`${c.file}: 16 kHz mono 16-bit, as many samples as the reference`, () => {
      const info = parseStreamInfo(flacOf(c));
      assert.equal(info.sampleRate, c.sampleRate);
      assert.equal(info.channels, 1);
      assert.equal(info.bitsPerSample, 16);
      assert.equal(info.totalSamples, c.pcmInt16.length);
      assert.match(info.md5, /^[0-9a-f]{32}$/);
      assert.ok(info.audioOffset > 42);
      assert.equal(formatMismatch(info), null);
    });
  }

  it('names what is wrong with another format', () => {
    const msg = formatMismatch({ sampleRate: 8000, channels: 2, bitsPerSample: 24 });
    assert.ok(msg && msg.includes('8000 Hz') && msg.includes('2 channels') && msg.includes('24-bit'), msg ?? '');
  });

  it('rejects a file that is not FLAC, and one too short for a header', () => {
    assert.throws(() => parseStreamInfo(new TextEncoder().encode('RIFF....WAVEfmt '.repeat(4))), (e: unknown) => e instanceof FlacError && e.kind === 'unreadable' && /fLaC/.test(e.message));
    assert.throws(() => parseStreamInfo(flacOf(ref.cases[0]!).subarray(0, 30)), (e: unknown) => e instanceof FlacError && /too short/.test(e.message));
  });
});

describe('FlacReader.decode', () => {
  for (const c of ref.cases) {
    it(`${c.file}: decoded samples hash to the MD5 the encoder stored in STREAMINFO`, async () => {
      const bytes = flacOf(c);
      const a = await reader.decode(bytes, { verifyMd5: false }); // our own check is off: the hash is computed here
      assert.equal(a.sampleRate, 16000);
      assert.equal(a.samples.length, c.pcmInt16.length);
      const md5 = createHash('md5').update(Buffer.from(a.samples.buffer, a.samples.byteOffset, a.samples.byteLength)).digest('hex');
      assert.equal(md5, parseStreamInfo(bytes).md5);
      let peak = 0;
      for (const v of a.samples) peak = Math.max(peak, Math.abs(v));
      assert.ok(peak > 1000, `speech should not be silent (peak ${peak})`);
    });

    it(`${c.file}: decoded samples equal what the reference tool gives (flac -d, libFLAC's own decoder)`, async () => {
      const bytes = flacOf(c);
      const raw = execFileSync('flac', ['-d', '-s', '-c', '--force-raw-format', '--endian=little', '--sign=signed', '-'], { input: bytes });
      const want = new Int16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
      const a = await reader.decode(bytes);
      assert.equal(a.samples.length, want.length);
      assert.ok(Buffer.from(a.samples.buffer, a.samples.byteOffset, a.samples.byteLength).equals(raw), 'samples differ from flac -d');
    });

    it(`${c.file}: decoded samples equal the reference pcmInt16`, async (t) => {
      const a = await reader.decode(flacOf(c));
      if (c.pcmInt16.every((v) => v === 0)) {
        // The shipped reference holds zeros only (its generator truncated float samples to int16); the MD5 test above
        // and the fbank test (torchaudio on the real audio) carry the proof until fresh vectors are dropped in.
        t.todo('reference pcmInt16 is all zeros: a defect of the reference file, not of the decoder');
        return;
      }
      assert.deepEqual(Array.from(a.samples), c.pcmInt16);
    });
  }

  it('a truncated file is a FlacError("truncated"), a corrupted one a FlacError', async () => {
    const bytes = flacOf(ref.cases[0]!);
    await assert.rejects(reader.decode(bytes.subarray(0, Math.floor(bytes.length / 2))), (e: unknown) => e instanceof FlacError && e.kind === 'truncated');
    const bad = Uint8Array.from(bytes);
    for (let i = 0; i < 64; i++) bad[Math.floor(bytes.length * 0.6) + i] ^= 0x5a;
    await assert.rejects(reader.decode(bad), (e: unknown) => e instanceof FlacError);
    // The reader is still usable afterwards.
    const ok = await reader.decode(bytes);
    assert.equal(ok.samples.length, ref.cases[0]!.pcmInt16.length);
  });
});

describe('checkLastFrame', () => {
  for (const c of ref.cases) {
    it(`${c.file}: a whole file ends with a frame that closes the stream; a cut one does not`, () => {
      const bytes = flacOf(c);
      const info = parseStreamInfo(bytes);
      const tail = (b: Uint8Array): Uint8Array => b.subarray(Math.max(0, b.length - tailBytes(info)));
      assert.equal(checkLastFrame(tail(bytes), info), c.pcmInt16.length);
      for (const cut of [1, 2, 100, Math.floor(bytes.length / 3)]) {
        assert.throws(() => checkLastFrame(tail(bytes.subarray(0, bytes.length - cut)), info), (e: unknown) => e instanceof FlacError && e.kind === 'truncated', `cut ${cut}`);
      }
    });
  }
});
