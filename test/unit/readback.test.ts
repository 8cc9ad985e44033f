// Issue 10 item 5: no synchronous device readback (dataSync/arraySync) in library code — on a GPU each is a stall,
// and on WebGPU in Node dataSync does not work. Tests and one-off tools (test/) may use them; nothing else may.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url)); // dist/test/unit → the repository
const SYNC_READBACK = /\.\s*(dataSync|arraySync)\s*\(/;

/** TypeScript sources under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

test('the pattern catches the calls it must and leaves prose alone', () => {
  for (const code of ['t.dataSync()', 'x.arraySync ()', 'grads.get(n)!.dataSync()[0]', 'a\n  .dataSync()']) assert.ok(SYNC_READBACK.test(code), code);
  for (const prose of ['// arrays from tfjs data()/dataSync() are fine', 'await t.data()', 'const dataSyncCount = 0']) assert.ok(!SYNC_READBACK.test(prose), prose);
});

test('no dataSync/arraySync in worker/, shared/ or coordinator/', () => {
  const offenders: string[] = [];
  for (const top of ['worker', 'shared', 'coordinator']) {
    for (const file of sources(join(ROOT, top))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (SYNC_READBACK.test(line)) offenders.push(`${file.slice(ROOT.length)}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  assert.deepEqual(offenders, [], `synchronous readbacks (use one packed \`await t.data()\`):\n${offenders.join('\n')}`);
});
