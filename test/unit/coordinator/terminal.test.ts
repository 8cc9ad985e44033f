// The terminal writer of `run` on a TTY, checked on what a person sees: its byte stream is played into a headless
// terminal emulator (xterm.js) and the screen is read back line by line. Regression test for issue 11, item 6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import xterm from '@xterm/headless';
import pino from 'pino';
import { Terminal } from '../../../coordinator/terminal.js';
import { Progress } from '../../../coordinator/progress.js';

const COLS = 160;

/** A TTY-like stream that records every byte written to it. */
function fakeTty(): NodeJS.WriteStream & { bytes: string } {
  const s = {
    bytes: '',
    isTTY: true,
    columns: COLS,
    rows: 40,
    write(chunk: string | Uint8Array, ...rest: unknown[]): boolean {
      s.bytes += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      cb?.();
      return true;
    },
    on() { return s; }, once() { return s; }, removeListener() { return s; },
  };
  return s as unknown as NodeJS.WriteStream & { bytes: string };
}

/** The screen after playing `bytes` into an emulator of COLS × 40: the non-empty lines, right-trimmed. */
async function screen(bytes: string): Promise<string[]> {
  const term = new xterm.Terminal({ cols: COLS, rows: 40, allowProposedApi: true, convertEol: true }); // the tty's onlcr: \n → \r\n
  await new Promise<void>((resolve) => term.write(bytes, resolve));
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
  term.dispose();
  return lines.filter((l) => l.trim() !== '');
}

/** Lets cli-progress's refresh timer (100 ms on a TTY) run, as it does between steps of a real job. */
const refresh = () => new Promise((r) => setTimeout(r, 250));

const record = (msg: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ level: 30, time: 1_700_000_000_000, role: 'worker', rank: 0, msg, ...extra });
const fields = (loss: string) => ({ epoch: 1, loss, metrics: 'top1 0.500 val_top1 —', sps: '12.0', ent: '1.234', world: 2 });

test('log lines print one per record above the bar, and the last frame of the bar stays above what follows', async () => {
  const out = fakeTty();
  const t = new Terminal(out);
  t.line(record('job planned', { steps: 10 })); // before the bar: straight through
  t.progress(1, 10, fields('2.3000'));
  await refresh();
  t.line(record('checkpoint written', { step: 5, path: '/tmp/x/ckpt-5', bytes: 123456, nested: { a: 1, b: [1, 2] } }));
  t.line(JSON.stringify({ level: 40, time: 1_700_000_000_000, role: 'worker', workerId: 'local-0', generation: 1, err: 'SGT_COMM: ring closed during receive', msg: 'generation failed' }));
  await refresh();
  t.progress(10, 10, fields('0.5000'));
  await refresh();
  // After the last step: the final evaluation and the workers' goodbyes arrive while the bar no longer changes.
  t.line(record('epoch 1: val_top1 0.912'));
  t.line(record('worker leaving'));
  await refresh();
  t.stop();
  out.write('summary: 10 steps\n'); // what the CLI prints after the job

  const lines = await screen(out.bytes);
  const bar = lines.findIndex((l) => l.startsWith('step 10/10 |'));
  assert.ok(bar >= 0, `the final bar is on screen:\n${lines.join('\n')}`);
  assert.equal(lines.filter((l) => l.startsWith('step ')).length, 1, `one bar line, no stale frames:\n${lines.join('\n')}`);
  assert.match(lines[bar], /loss 0\.5000 .* workers 2$/);
  assert.equal(lines[bar + 1], 'summary: 10 steps', 'the summary follows the bar');
  const logs = lines.slice(0, bar);
  assert.deepEqual(logs.map((l) => /(job planned|checkpoint written|generation failed|epoch 1: val_top1 0\.912|worker leaving)/.exec(l)?.[1]),
    ['job planned', 'checkpoint written', 'generation failed', 'epoch 1: val_top1 0.912', 'worker leaving'], `one line per record, in order:\n${lines.join('\n')}`);
  // A warning keeps its fields, err included, on its own line.
  assert.match(logs[2], /WARN: local-0: generation failed \{.*"err":"SGT_COMM: ring closed during receive"/);
  assert.ok(!logs.some((l) => /nested|path:|\{$/.test(l)), `no multi-line objects at info:\n${lines.join('\n')}`);
});

test('a log line between steps leaves the bar drawn below it (no gap until the next step)', async () => {
  const out = fakeTty();
  const t = new Terminal(out);
  t.progress(3, 10, fields('1.0000'));
  await refresh();
  t.line(record('re-forming: worker lost'));
  await refresh(); // flushes the log line; the bar's text has not changed since its last draw
  const lines = await screen(out.bytes);
  t.stop();
  assert.match(lines.at(-1) ?? '', /^step 3\/10 \|/, `the bar is the last line:\n${lines.join('\n')}`);
  assert.match(lines.at(-2) ?? '', /re-forming: worker lost/);
});

test('the final evaluation, which arrives after the last step, shows on the bar\'s last frame', async () => {
  const out = fakeTty();
  const t = new Terminal(out);
  const progress = new Progress(pino({ level: 'silent' }), 25, t, 'val_top1');
  const point = { step: 10, total: 10, epoch: 0, loss: 0.5, metrics: { accuracy: 0.9 }, samplesPerSecond: 12, minEntropy: 1.2, entropyPerLayer: [1.2], worldSize: 2, generation: 1 };
  progress.evaluated({ val_top1: 0.5 });
  progress.update(point);
  await refresh();
  progress.evaluated({ val_top1: 0.978, val_top5: 1 });
  t.line(record('epoch 1: val_top1=0.978'));
  await refresh();
  progress.stop();
  const lines = await screen(out.bytes);
  assert.match(lines.at(-1) ?? '', /^step 10\/10 \|.* val_top1 0\.978 /, `the bar's last frame:\n${lines.join('\n')}`);
});
