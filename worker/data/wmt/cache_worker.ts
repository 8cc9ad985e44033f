// Worker thread of the token cache: encodes the parts it is sent (cache.ts's encodePart) and answers each one.

import { parentPort } from 'node:worker_threads';
import { SigmaError } from '../../../shared/errors.js';
import { encodePart, type PartJob } from './cache.js';
import { loadVocab, type Vocab } from './vocab.js';

if (parentPort) {
  const port = parentPort;
  let vocab: { path: string; v: Vocab } | null = null;
  port.on('message', async (job: PartJob) => {
    try {
      if (!vocab || vocab.path !== job.vocabPath) vocab = { path: job.vocabPath, v: await loadVocab(job.vocabPath) };
      port.postMessage({ ok: true, result: await encodePart(job, vocab.v) });
    } catch (e) {
      port.postMessage({ ok: false, code: e instanceof SigmaError ? e.code : undefined, message: (e as Error).message });
    }
  });
}
