// Runs a suite once per tfjs backend that loads here (cpu, wasm, and tensorflow where installed).
import * as tf from '@tensorflow/tfjs';
import { before, describe } from 'node:test';
import { initBackend } from '../../worker/backend.js';

export const TEST_BACKENDS = ['cpu', 'wasm'] as const;

export function forEachBackend(suite: (backend: string) => void): void {
  for (const b of TEST_BACKENDS) {
    describe(`backend ${b}`, () => {
      before(async () => {
        await initBackend(b);
        if (tf.getBackend() !== b) throw new Error(`backend ${b} did not activate (got ${tf.getBackend()})`);
      });
      suite(b);
    });
  }
}
