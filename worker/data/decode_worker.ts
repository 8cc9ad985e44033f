// Entry point of one DecodePool thread: answers each 'decode.run' by decoding its rows into the shared batch
// buffer and replying 'decode.done' with a reason per sample (null = decoded).

import { parentPort } from 'node:worker_threads';
import { decodeRows, type DecodeDoneMessage, type DecodeRunMessage } from './pool.js';

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: DecodeRunMessage) => {
    if (m.type !== 'decode.run') return;
    const dst = new Float32Array(m.buffer);
    void decodeRows(m.job, m.transform, dst, m.failOn, m.concurrency).then((reasons) => {
      const done: DecodeDoneMessage = { type: 'decode.done', id: m.id, reasons };
      port.postMessage(done);
    });
  });
}
