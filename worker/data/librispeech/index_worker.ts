// Entry point of one index thread: answers each 'scan' with the chapter's scan result.

import { parentPort } from 'node:worker_threads';
import { scanChapter, type ChapterJob, type ChapterResult } from './scan.js';

export interface ScanRequest { type: 'scan'; id: number; job: ChapterJob }
export type ScanReply = { type: 'scan.done'; id: number; result: ChapterResult } | { type: 'scan.failed'; id: number; error: string };

if (parentPort) {
  const port = parentPort;
  port.on('message', (m: ScanRequest) => {
    if (m.type !== 'scan') return;
    scanChapter(m.job).then(
      (result) => port.postMessage({ type: 'scan.done', id: m.id, result } satisfies ScanReply),
      (e: unknown) => port.postMessage({ type: 'scan.failed', id: m.id, error: (e as Error).stack ?? String(e) } satisfies ScanReply),
    );
  });
}
