// Checkpoint store: round trip, listing, keep-last-K, same-step replacement, leftovers of dead writers, sha256
// verification with errors naming the file, and the background CheckpointWriter (coalescing, error propagation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SigmaError } from '../../../shared/errors.js';
import {
  CheckpointWriter,
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointData,
} from '../../../shared/checkpoint/store.js';

const root = mkdtempSync(join(tmpdir(), 'sgt-ckpt-'));
let fresh = 0;
function newDir(): string {
  return join(root, `d${fresh++}`);
}

/** A small checkpoint whose every value derives from (step, version), so a read can be checked against its state. */
function sample(step: number, version = 0, n = 1000): CheckpointData {
  const w = new Float32Array(n).map((_, i) => step + version / 10 + i / n);
  return {
    model: new Map([
      ['blocks.0.attn.qkv.weight', { shape: [n / 10, 10], data: w }],
      ['blocks.0.attn.qkv.gamma', { shape: [], data: Float32Array.of(1 + step) }],
      ['blocks.0.attn.qkv.u', { shape: [10], data: new Float32Array(10).fill(version) }],
      ['head.bias', { shape: [0], data: new Float32Array(0) }],
    ]),
    optimizer: new Map([['adamw.m/blocks.0.attn.qkv.weight', { shape: [n / 10, 10], data: w.map((x) => -x) }]]),
    state: { step, version, epoch: Math.floor(step / 10), generation: 2, config: { model: { depth: 1 } }, fingerprint: 'vit-t/16', rng: { seed: 7, counter: [1, 2] } },
  };
}

function assertSame(got: CheckpointData, want: CheckpointData): void {
  assert.deepEqual(got.state, want.state);
  for (const part of ['model', 'optimizer'] as const) {
    assert.deepEqual([...got[part].keys()].sort(), [...want[part].keys()].sort());
    for (const [name, t] of want[part]) {
      const g = got[part].get(name)!;
      assert.deepEqual(g.shape, t.shape, name);
      assert.ok(g.data instanceof Float32Array);
      assert.deepEqual(g.data, t.data, name);
    }
  }
}

async function rejectsNaming(p: Promise<unknown>, parts: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SigmaError && e.code === 'SGT_CHECKPOINT_INVALID', `expected SGT_CHECKPOINT_INVALID, got ${String(e)}`);
    for (const s of parts) assert.ok(e.message.includes(s), `${JSON.stringify(e.message)} should name ${JSON.stringify(s)}`);
    return true;
  });
}

test('write then read: same tensors and state; layout ckpt-<9 digits>/{model,optimizer}.safetensors + state.json', async () => {
  const dir = newDir();
  const data = sample(42);
  const path = await writeCheckpoint(dir, data, { keep: 3 });
  assert.equal(path, join(dir, 'ckpt-000000042'));
  assert.deepEqual(readdirSync(path).sort(), ['model.safetensors', 'optimizer.safetensors', 'state.json']);
  const state = JSON.parse(readFileSync(join(path, 'state.json'), 'utf8'));
  assert.equal(state.step, 42);
  assert.match(state.files['model.safetensors'].sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(state.state, data.state);
  assertSame(await readCheckpoint(path), data);
  assert.deepEqual(readdirSync(dir), ['ckpt-000000042'], 'no temp directory left behind');
  assert.equal(checkpointName(1_234_567_890), 'ckpt-1234567890');
});

test('list ascending, latest, keep the last K', async () => {
  const dir = newDir();
  assert.deepEqual(await listCheckpoints(dir), []);
  assert.equal(await latestCheckpoint(dir), undefined);
  for (const step of [5, 1, 10, 20, 15]) await writeCheckpoint(dir, sample(step), { keep: 3 });
  // After 5,1,10: [1,5,10]; +20: [5,10,20]; +15: [10,15,20].
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [10, 15, 20]);
  assert.equal(await latestCheckpoint(dir), join(dir, 'ckpt-000000020'));
  assert.deepEqual(readdirSync(dir).sort(), ['ckpt-000000010', 'ckpt-000000015', 'ckpt-000000020']);
  // A rollback writes an older step: it stays (just written) even though it is not among the 3 highest.
  await writeCheckpoint(dir, sample(3), { keep: 3 });
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [3, 15, 20]);
  assert.equal(await latestCheckpoint(dir), join(dir, 'ckpt-000000020'), 'latest is by step, not by time');
  await writeCheckpoint(dir, sample(25), { keep: 1 });
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [25]);
});

test('writing the same step again replaces it', async () => {
  const dir = newDir();
  await writeCheckpoint(dir, sample(7, 0), { keep: 5 });
  await writeCheckpoint(dir, sample(8, 0), { keep: 5 });
  const path = await writeCheckpoint(dir, sample(7, 1), { keep: 5 });
  assertSame(await readCheckpoint(path), sample(7, 1));
  assert.deepEqual(readdirSync(dir).sort(), ['ckpt-000000007', 'ckpt-000000008']);
});

test('leftovers are ignored by listing and cleaned by the next write; a moved-aside checkpoint is restored', async () => {
  const dir = newDir();
  await writeCheckpoint(dir, sample(1), { keep: 5 });
  await writeCheckpoint(dir, sample(2), { keep: 5 });
  const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default range: no such process
  // A temp dir of a killed writer, complete enough to fool a careless lister.
  cpSync(join(dir, 'ckpt-000000002'), join(dir, `.tmp-ckpt-000000009-${deadPid}-abcd`), { recursive: true });
  // A ckpt- directory that is not a checkpoint (no state.json), and one whose model file lost bytes.
  mkdirSync(join(dir, 'ckpt-000000008'));
  cpSync(join(dir, 'ckpt-000000002'), join(dir, 'ckpt-000000007'), { recursive: true });
  const state7 = JSON.parse(readFileSync(join(dir, 'ckpt-000000007', 'state.json'), 'utf8'));
  state7.step = 7;
  state7.state.step = 7;
  writeFileSync(join(dir, 'ckpt-000000007', 'state.json'), JSON.stringify(state7));
  writeFileSync(join(dir, 'ckpt-000000007', 'model.safetensors'), 'short');
  // A same-step replace killed between "old aside" and "new in": step 1 is gone from its name.
  cpSync(join(dir, 'ckpt-000000001'), join(dir, `.old-ckpt-000000001-${deadPid}-ef01`), { recursive: true });
  await import('node:fs/promises').then((fs) => fs.rm(join(dir, 'ckpt-000000001'), { recursive: true }));

  // Step 1 is still listed, at its moved-aside path; the temp and incomplete directories are not.
  assert.deepEqual(await listCheckpoints(dir), [
    { step: 1, path: join(dir, `.old-ckpt-000000001-${deadPid}-ef01`) },
    { step: 2, path: join(dir, 'ckpt-000000002') },
  ]);
  await writeCheckpoint(dir, sample(3), { keep: 5 });
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [1, 2, 3]);
  assertSame(await readCheckpoint(join(dir, 'ckpt-000000001')), sample(1));
  assert.ok(!readdirSync(dir).some((n) => n.startsWith('.')), `no dot-leftovers: ${readdirSync(dir).join(', ')}`);
  // Incomplete ckpt- directories are not ours to delete (they might be a person's); they are just never listed.
  assert.ok(existsSync(join(dir, 'ckpt-000000008')));
});

test('corruption → SGT_CHECKPOINT_INVALID naming the file', async () => {
  const dir = newDir();
  const good = await writeCheckpoint(dir, sample(4), { keep: 5 });
  const copy = (name: string): string => {
    const p = join(dir, name);
    cpSync(good, p, { recursive: true });
    return p;
  };

  const flipped = copy('flipped');
  const model = readFileSync(join(flipped, 'model.safetensors'));
  model[model.length - 1] ^= 1;
  writeFileSync(join(flipped, 'model.safetensors'), model);
  await rejectsNaming(readCheckpoint(flipped), [join(flipped, 'model.safetensors'), 'sha256', 'does not match']);

  const truncated = copy('truncated');
  const opt = readFileSync(join(truncated, 'optimizer.safetensors'));
  writeFileSync(join(truncated, 'optimizer.safetensors'), opt.subarray(0, opt.length - 100));
  await rejectsNaming(readCheckpoint(truncated), [join(truncated, 'optimizer.safetensors'), 'sha256']);

  const badSha = copy('bad-sha');
  const st = JSON.parse(readFileSync(join(badSha, 'state.json'), 'utf8'));
  st.files['optimizer.safetensors'].sha256 = '0'.repeat(64);
  writeFileSync(join(badSha, 'state.json'), JSON.stringify(st));
  await rejectsNaming(readCheckpoint(badSha), [join(badSha, 'optimizer.safetensors'), '0'.repeat(64)]);

  const badJson = copy('bad-json');
  writeFileSync(join(badJson, 'state.json'), '{"format": "sigmatrain-checkpoint/1", "step": 4,');
  await rejectsNaming(readCheckpoint(badJson), [join(badJson, 'state.json'), 'not valid JSON']);

  const noState = copy('no-state');
  await import('node:fs/promises').then((fs) => fs.rm(join(noState, 'state.json')));
  await rejectsNaming(readCheckpoint(noState), [join(noState, 'state.json'), 'not a complete checkpoint']);

  const noModel = copy('no-model');
  await import('node:fs/promises').then((fs) => fs.rm(join(noModel, 'model.safetensors')));
  await rejectsNaming(readCheckpoint(noModel), [join(noModel, 'model.safetensors'), 'cannot be read']);

  const renamed = copy('ckpt-000000005');
  await rejectsNaming(readCheckpoint(renamed), ['step 4 does not match the directory name ckpt-000000005']);

  // Bad arguments are refused before anything is written.
  await rejectsNaming(writeCheckpoint(dir, { ...sample(1), state: { step: -1 } }, { keep: 1 }), ['state.step', '-1']);
  await rejectsNaming(writeCheckpoint(dir, sample(1), { keep: 0 }), ['keep', '0']);
  const badShape = sample(1);
  badShape.model.set('x', { shape: [3], data: new Float32Array(2) });
  await rejectsNaming(writeCheckpoint(dir, badShape, { keep: 1 }), ['"x"', '3 elements']);
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [4], 'failed writes leave nothing listed');
});

test('CheckpointWriter: never two writes at once, keeps only the newest pending, flush waits', async () => {
  const dir = newDir();
  const written: number[] = [];
  const w = new CheckpointWriter(dir, { keep: 10, onWritten: (i) => written.push(i.step) });
  // Enqueued in the same tick: the write starts on a later tick, so only the newer one is written.
  w.enqueue(sample(1, 0, 400_000));
  assert.equal(w.busy, true);
  w.enqueue(sample(2, 0, 400_000));
  await w.flush();
  assert.deepEqual(written, [2]);
  assert.equal(w.dropped, 1);
  // Step 3 is being written (large enough to take a while) when 4..6 arrive: 6 waits, replacing 4 and 5.
  w.enqueue(sample(3, 0, 400_000));
  await new Promise((r) => setImmediate(r));
  for (const step of [4, 5, 6]) w.enqueue(sample(step, 0, 400_000));
  assert.equal(w.dropped, 3);
  await w.flush();
  assert.deepEqual(written, [2, 3, 6]);
  assert.equal(w.written, 3);
  assert.equal(w.busy, false);
  assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [2, 3, 6]);
  assertSame(await readCheckpoint(join(dir, 'ckpt-000000006')), sample(6, 0, 400_000));
  await w.flush(); // idle flush resolves at once
});

test('CheckpointWriter: a background failure surfaces once, on the next enqueue or flush', async () => {
  const parent = newDir();
  mkdirSync(parent);
  const notADir = join(parent, 'file');
  writeFileSync(notADir, 'x');
  const w = new CheckpointWriter(join(notADir, 'ckpts'), { keep: 2 });
  w.enqueue(sample(1));
  await assert.rejects(w.flush(), /ENOTDIR|EEXIST/);
  await w.flush(); // surfaced once, then cleared

  const w2 = new CheckpointWriter(join(notADir, 'ckpts'), { keep: 2 });
  w2.enqueue(sample(1));
  while (w2.busy) await new Promise((r) => setTimeout(r, 5));
  assert.throws(() => w2.enqueue(sample(2)), /ENOTDIR|EEXIST/);
  assert.equal(w2.busy, false, 'the enqueue that threw queued nothing');

  // Validation errors come back the same way, with the checkpoint code.
  const w3 = new CheckpointWriter(newDir(), { keep: 2 });
  w3.enqueue({ ...sample(1), state: { step: 1.5 } });
  await rejectsNaming(w3.flush(), ['state.step', '1.5']);
  w3.enqueue(sample(2));
  await w3.flush();
  assert.equal(w3.written, 1);
});
