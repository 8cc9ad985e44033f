// The data threads' path (read, decode in WebAssembly, features, SpecAugment) runs inside a node:worker_threads
// Worker and gives bitwise the same features as on the main thread.

import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { FlacReader } from '../../../../../worker/data/audio/flac.js';
import { SPEC_AUGMENT_RECIPE } from '../../../../../worker/data/audio/specaugment.js';
import { loadUtterance, type UtteranceOptions } from '../../../../../worker/data/librispeech/utterance.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-speech-thread-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));

it('loadUtterance in a worker thread equals the main thread, for both feature kinds, with and without the frequency warp', async () => {
  const ref = JSON.parse(await fs.readFile(fileURLToPath(new URL('../../../../../../test/fixtures/speech_features.json', import.meta.url)), 'utf8')) as {
    cases: { file: string; flacBase64: string; pcmInt16: number[] }[];
  };
  const c = ref.cases[0]!;
  const file = path.join(tmp, c.file);
  await fs.writeFile(file, Buffer.from(c.flacBase64, 'base64'));
  const moduleUrl = new URL('../../../../../worker/data/librispeech/utterance.js', import.meta.url).href;
  const flacUrl = new URL('../../../../../worker/data/audio/flac.js', import.meta.url).href;
  for (const [kind, specAugment] of (['kaldi-fbank', 'logmel'] as const).flatMap((k) => [[k, SPEC_AUGMENT_RECIPE], [k, { ...SPEC_AUGMENT_RECIPE, freqWarp: 0.2 }]] as const)) {
    const o: UtteranceOptions = { features: { kind }, specAugment };
    const reader = new FlacReader();
    const main = await loadUtterance(reader, file, c.pcmInt16.length, o, 42);
    reader.close();
    assert.ok(main.ok);
    const code = `
      import { parentPort, workerData } from 'node:worker_threads';
      const { loadUtterance } = await import(workerData.moduleUrl);
      const { FlacReader } = await import(workerData.flacUrl);
      const r = await loadUtterance(new FlacReader(), workerData.file, workerData.n, workerData.o, 42);
      parentPort.postMessage(r.ok ? { data: r.features.data, frames: r.features.frames, masks: r.masks } : r);`;
    const got = await new Promise<{ data: Float32Array; frames: number; masks: unknown }>((resolve, reject) => {
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: { moduleUrl, flacUrl, file, n: c.pcmInt16.length, o } });
      w.once('message', (m) => {
        void w.terminate();
        resolve(m as { data: Float32Array; frames: number; masks: unknown });
      });
      w.once('error', reject);
    });
    assert.equal(got.frames, main.features.frames);
    assert.deepEqual(got.masks, main.masks);
    assert.ok(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(main.features.data.buffer)), `${kind}, freqWarp ${specAugment.freqWarp ?? 0}: thread features differ`);
  }
});
