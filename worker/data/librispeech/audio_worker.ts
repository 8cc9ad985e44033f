// Entry point of one AudioPool thread: answers each 'audio.run' with the loaded utterances (features transferred).

import { parentPort } from 'node:worker_threads';
import { FlacReader } from '../audio/flac.js';
import { loadJobs, type AudioDoneMessage, type AudioRunMessage } from './audio_pool.js';

if (parentPort) {
  const port = parentPort;
  const reader = new FlacReader();
  // One message at a time: the reader's decoder is not re-entrant (the pool sends a thread one chunk at a time anyway).
  let last: Promise<unknown> = Promise.resolve();
  port.on('message', (m: AudioRunMessage) => {
    if (m.type !== 'audio.run') return;
    last = last
      .then(() => loadJobs(reader, m.jobs, m.options))
      // loadUtterance reports a bad file as a result; anything thrown is a bug, reported per utterance, not a hang.
      .catch((e: unknown) => m.jobs.map((j) => ({ ok: false as const, reason: 'unreadable_flac' as const, message: `${j.path}: feature thread error: ${(e as Error).message}` })))
      .then((results) => {
        const transfer = [...new Set(results.flatMap((r) => (r.ok ? [r.features.data.buffer as ArrayBuffer] : [])))];
        port.postMessage({ type: 'audio.done', id: m.id, results } satisfies AudioDoneMessage, transfer);
      });
  });
}
