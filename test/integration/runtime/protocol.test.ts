// The control protocol under garbage: malformed, truncated, oversized, wrong-version and unknown messages are
// answered with an error and both the coordinator and a real worker process keep running.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { Dealer, Router } from 'zeromq';
import { pack } from 'msgpackr';
import { loadConfig, configHash } from '../../../shared/config/index.js';
import { createLogger } from '../../../shared/log.js';
import { encode, decode, PROTOCOL_VERSION, MAX_MESSAGE_BYTES, type Message } from '../../../shared/protocol/index.js';
import { Coordinator } from '../../../coordinator/coordinator.js';
import { sigmatrain, TINY, tempDir, coordinatorAddress } from '../helpers/job.js';

/** Frames that must each be answered with an error. */
function garbage(): Buffer[] {
  const hello = encode({ type: 'worker.hello', workerId: 'w', configHash: 'x', host: 'h', pid: 1, ringEndpoint: 'ipc:///tmp/x', totalSteps: 1, held: null });
  const frames = [
    Buffer.from('definitely not msgpack \x00\xff'),
    hello.subarray(0, Math.floor(hello.length / 2)), // truncated
    Buffer.alloc(MAX_MESSAGE_BYTES + 1, 7), // oversized
    pack([1, 2, 3]), // not a map
    pack({ v: PROTOCOL_VERSION + 1, id: 1, type: 'worker.hello' }), // wrong version
    pack({ v: PROTOCOL_VERSION, id: 2, type: 'worker.teleport' }), // unknown type
    pack({ v: PROTOCOL_VERSION, id: 3, type: 'worker.report', workerId: 'w' }), // missing fields
    Buffer.alloc(0),
  ];
  // Random bytes, seeded.
  let s = 12345;
  for (let i = 0; i < 20; i++) {
    const b = Buffer.alloc(1 + (i * 37) % 300);
    for (let j = 0; j < b.length; j++) b[j] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    frames.push(b);
  }
  return frames;
}

async function replies(sock: Dealer | Router, count: number, timeoutMs: number, router = false): Promise<Message[]> {
  const out: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    const frames = await Promise.race([sock.receive(), new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now()))]);
    if (!frames) break;
    const d = decode(frames[router ? frames.length - 1 : frames.length - 1]);
    assert.ok(d.ok, `a reply did not decode: ${!d.ok && d.error}`);
    if (d.ok && d.msg.type === 'error') out.push(d.msg);
  }
  return out;
}

test('the coordinator answers every bad message with an error and keeps running', { timeout: 60_000 }, async () => {
  const config = loadConfig({ file: TINY, env: {} });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const log = createLogger({ role: 'coordinator', destination: sink, pretty: false });
  const addr = coordinatorAddress();
  const port = addr.split(':')[1];
  const c = new Coordinator(config, { bind: `tcp://127.0.0.1:${port}`, runDir: tempDir('proto-coord'), expectWorkers: 5, resume: 'never' }, log);
  const job = c.run();
  const d = new Dealer({ routingId: 'fuzzer' });
  d.connect(`tcp://${addr}`);
  try {
    const bad = garbage();
    for (const f of bad) await d.send(f);
    const errs = await replies(d, bad.length, 20_000);
    assert.equal(errs.length, bad.length, `${errs.length} of ${bad.length} bad frames answered`);
    assert.ok(errs.some((e) => e.type === 'error' && /protocol version/.test(e.message)));
    assert.ok(errs.some((e) => e.type === 'error' && /exceeds/.test(e.message)));
    // Still alive: a hello with another config hash is refused, naming both hashes.
    await d.send(encode({ type: 'worker.hello', workerId: 'fuzzer', configHash: 'feedface', host: 'h', pid: 1, ringEndpoint: 'ipc:///tmp/f', totalSteps: 8, held: null }));
    const [refusal] = await replies(d, 1, 10_000);
    assert.ok(refusal && refusal.type === 'error' && refusal.fatal && refusal.message.includes('feedface') && refusal.message.includes(configHash(config)));
  } finally {
    c.requestStop('test over');
    d.close();
  }
  const s = await job;
  assert.equal(s.stoppedEarly, true);
});

test('a real worker process answers bad messages with errors, keeps running, and stops on request', { timeout: 90_000 }, async () => {
  const addr = coordinatorAddress();
  const r = new Router();
  await r.bind(`tcp://${addr}`);
  const w = sigmatrain(['worker', '--config', TINY, '--data.root', join(tempDir('proto-data'), 'shapes'), '--coordinator', addr, '--worker-id', 'victim']);
  try {
    // Wait for its hello.
    let id: Buffer | undefined;
    for (;;) {
      const [rid, frame] = await r.receive();
      const d = decode(frame);
      if (d.ok && d.msg.type === 'worker.hello') {
        id = rid;
        break;
      }
    }
    const bad = garbage();
    for (const f of bad) await r.send([id, f]);
    const errs = await replies(r, bad.length, 30_000, true);
    assert.equal(errs.length, bad.length, `${errs.length} of ${bad.length} bad frames answered`);
    assert.equal(w.child.exitCode, null, 'worker still running');
    await r.send([id, encode({ type: 'coord.stop', reason: 'test over', checkpoint: false, atStep: null })]);
    assert.equal(await w.exit, 0, w.text.slice(-20).join('\n'));
    assert.ok(w.messages(/bad control message/).length >= bad.length);
  } finally {
    w.child.kill('SIGKILL');
    r.close();
  }
});
