// The ring's node:net data plane (dist.dataPlane=net): one persistent stream connection per ring edge, fixed 40-byte
// frame headers, and payloads read from one reused buffer straight into the caller's array (copied, or summed in place).
//
// Rank r listens at its own endpoint; its SUCCESSOR connects to it as the client, so that the receiving side of every
// edge owns the read (`onread` with one reused buffer: no Buffer per read, no external-memory GC, no fresh pages),
// while the sending side writes into the accepted socket (zero-copy views of the caller's array). A 16-byte handshake
// both ways pins each connection to one generation and one pair of ranks; every frame carries the generation again.

import { unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { OPS, type FrameHeader, type OpName } from './header.js';

/** Frame header: ten uint32 little-endian fields (a multiple of 4, so float payloads stay 4-byte aligned in the stream). */
export const NET_HEADER_BYTES = 40;
/** 'SGTF': frame magic; a desynchronised stream (a bug, or a foreign process) fails at once as a protocol error. */
export const FRAME_MAGIC = 0x46544753;
/** 'SGTH': handshake magic (client → server: who connects; server → client: who listens). */
export const HELLO_MAGIC = 0x48544753;
export const HELLO_BYTES = 16;

/** Frame header fields (payload length is the header's last field; the payload is zero-padded to a multiple of 4). */
export interface NetFrameHeader extends FrameHeader {
  /** Payload bytes that follow (before the padding). */
  payloadBytes: number;
}

/** Encode a frame header into `out` (40 bytes, at a 4-byte aligned offset). Exported for tests that forge frames. */
export function encodeNetHeader(h: NetFrameHeader, out: Uint32Array = new Uint32Array(NET_HEADER_BYTES / 4)): Uint32Array {
  out[0] = FRAME_MAGIC;
  out[1] = h.gen;
  out[2] = OPS.indexOf(h.op);
  out[3] = h.seq;
  out[4] = h.step;
  out[5] = h.chunk;
  out[6] = h.from;
  out[7] = h.len % 0x1_0000_0000;
  out[8] = Math.floor(h.len / 0x1_0000_0000);
  out[9] = h.payloadBytes;
  return out;
}

/** Handshake record: magic, generation, rank, world size (uint32 LE). */
export function encodeHello(gen: number, rank: number, worldSize: number): Uint8Array {
  return new Uint8Array(Uint32Array.of(HELLO_MAGIC, gen, rank, worldSize).buffer);
}

/** A parsed `ipc://path` or `tcp://host:port` endpoint (the same strings the ZeroMQ plane takes). */
export type NetEndpoint = { path: string } | { host: string; port: number };

/** Parses an endpoint; returns a reason string when it is not one. `*` and an empty host listen on every interface. */
export function parseEndpoint(ep: string, listening: boolean): NetEndpoint | string {
  if (ep.startsWith('ipc://')) {
    const path = ep.slice('ipc://'.length);
    return path ? { path } : `endpoint ${JSON.stringify(ep)} has no socket path`;
  }
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:]*):(\d+)$/.exec(ep);
  if (!m) return `endpoint ${JSON.stringify(ep)} is not ipc://PATH or tcp://HOST:PORT`;
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) return `endpoint ${JSON.stringify(ep)}: port ${m[2]} is not in 1..65535`;
  let host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  if (host === '*' || host === '') {
    if (!listening) return `endpoint ${JSON.stringify(ep)}: cannot connect to host ${JSON.stringify(m[1])}`;
    host = '0.0.0.0';
  }
  return { host, port };
}

/** Where the payload of one received frame goes. */
export interface Landing {
  /** Payload bytes the frame must carry (a different count is a protocol error). */
  bytes: number;
  /** Sum mode: dst[i] += payload[i] (float32, in place). */
  add?: Float32Array;
  /** Copy mode: the payload's bytes, verbatim. */
  copy?: Uint8Array;
}

/** One outgoing frame: header fields plus an optional payload, sent without copying (it must stay intact until the exchange ends). */
export interface NetOutgoing {
  step: number;
  chunk: number;
  payload?: ArrayBufferView;
}

/** One collective on the net plane: the frames it receives in FIFO order, where each lands, and what each releases. */
export interface NetExchange {
  op: OpName;
  seq: number;
  len: number;
  recvCount: number;
  sendCount: number;
  initial: NetOutgoing[];
  expect(k: number): { step: number; chunk: number };
  landing(step: number, chunk: number): Landing;
  landed(step: number, chunk: number, send: (o: NetOutgoing) => void): void;
}

/** The ring's error constructors (ring.ts owns messages and CommError details); the link only says what happened. */
export interface LinkHooks {
  /** code: 'EAGAIN' (timed out), 'SGT_LOST' (connection closed or reset), or a system error code. */
  ioError(e: unknown, dir: 'send' | 'receive', ex: NetExchange, step: number, chunk: number): Error;
  protocol(message: string, step: number, chunk: number, ex: NetExchange): Error;
  /** A frame or connection of another generation was dropped. */
  stale(what: { frameGeneration: number; op?: string; connection?: boolean }): void;
  received(bytes: number): void;
  sent(bytes: number): void;
}

export interface NetLinkOptions {
  rank: number;
  worldSize: number;
  generation: number;
  listen: NetEndpoint;
  /** The predecessor's endpoint: this rank connects to it and reads the predecessor's frames from it. */
  prev: NetEndpoint;
  timeoutMs: number;
  /** Bytes per read from the socket (one reused buffer). Default 256 KB. */
  readBytes?: number;
  hooks: LinkHooks;
}

type Phase = 'hello' | 'frames';

const lost = (what: string): Error => Object.assign(new Error(what), { code: 'SGT_LOST' });
const timedOut = (what: string): Error => Object.assign(new Error(what), { code: 'EAGAIN' });
const ZERO_PAD = new Uint8Array(4);
/** Copy landings with at least this many bytes still to come are read straight into the destination. */
const DIRECT_MIN_BYTES = 4096;

/**
 * Both connections of one rank: `out` (accepted from the successor; this rank writes frames into it) and `in`
 * (connected to the predecessor; read with one reused buffer). One exchange at a time; between exchanges reading is
 * paused, so bytes a faster predecessor sends for the next collective wait in the kernel (or, already read, in the
 * read buffer) instead of being copied aside.
 */
export class NetLink {
  private readonly o: NetLinkOptions;
  private readonly nextRank: number;
  private readonly prevRank: number;
  private server: Server | null = null;
  private out: Socket | null = null;
  private in: Socket | null = null;
  private closing = false;
  /** A connection failure seen while no exchange ran: the next exchange fails with it at once. */
  private broken: { err: Error; dir: 'send' | 'receive' } | null = null;

  // ---- receive state (persistent across exchanges: a frame may straddle two reads) --------------------------
  private readonly ab: ArrayBuffer;
  private readonly rbuf: Buffer;
  private readonly rf32: Float32Array;
  /** views[q] = the read buffer from byte q: the next read starts at (stream position mod 4), keeping floats aligned. */
  private readonly views: Uint8Array[];
  private readOff = 0;
  /** The socket's next read goes straight into the current copy landing (see nextBuffer). */
  private direct = false;
  private streamPos = 0;
  private phase: Phase = 'hello';
  private helloGot = 0;
  private readonly hello = new Uint8Array(HELLO_BYTES);
  private onHello: ((magic: number, gen: number, rank: number, world: number) => void) | null = null;
  /** Unconsumed bytes [pendStart, pendEnd) of the read buffer while reading is paused. */
  private pendStart = 0;
  private pendEnd = 0;
  private paused = false;
  private readonly hdr = new Uint32Array(NET_HEADER_BYTES / 4);
  private readonly hdrU8 = new Uint8Array(this.hdr.buffer);
  private hdrGot = 0;
  private payloadLeft = 0;
  private padLeft = 0;
  private payloadPos = 0;
  private land: Landing = { bytes: 0 };
  private drain = false;
  private readonly carry = new Float32Array(1);
  private readonly carryU8 = new Uint8Array(this.carry.buffer);
  private step = 0;
  private chunk = 0;

  // ---- the running exchange ----------------------------------------------------------------------------------
  private ex: NetExchange | null = null;
  private k = 0;
  private sent = 0;
  private writesPending = 0;
  /** Step and chunk of the latest frame written (named by a send timeout). */
  private sendStep = 0;
  private sendChunk = 0;
  private lastRecv = 0;
  private lastSend = 0;
  private settle: ((e?: Error) => void) | null = null;
  /** Header slots for the exchange's sends (reused across exchanges; grown when a collective needs more). */
  private slab = new Uint32Array(0);
  private slabU8 = new Uint8Array(0);

  constructor(o: NetLinkOptions) {
    this.o = o;
    this.nextRank = (o.rank + 1) % o.worldSize;
    this.prevRank = (o.rank + o.worldSize - 1) % o.worldSize;
    const R = o.readBytes ?? 256 * 1024;
    this.ab = new ArrayBuffer(R + 4);
    this.rbuf = Buffer.from(this.ab);
    this.rf32 = new Float32Array(this.ab);
    this.views = [0, 1, 2, 3].map((q) => new Uint8Array(this.ab, q, R));
  }

  /** Binds the listening socket (a stale ipc socket file is removed first, as ZeroMQ does). */
  async listen(): Promise<void> {
    const ep = this.o.listen;
    if ('path' in ep) {
      try {
        unlinkSync(ep.path);
      } catch {
        // no stale socket file
      }
    }
    const server = createServer({ noDelay: true });
    this.server = server;
    server.on('connection', (s) => this.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen('path' in ep ? { path: ep.path } : { host: ep.host, port: ep.port }, () => {
        server.off('error', reject);
        server.on('error', () => undefined); // later accept errors surface on the connections, if at all
        resolve();
      });
    });
  }

  /**
   * Connects to the predecessor (retrying while it is not up yet, or while another generation answers there) and
   * waits for the successor's connection; both within timeoutMs, else a timeout on the side that is missing.
   */
  async connect(ex: NetExchange): Promise<void> {
    const deadline = Date.now() + this.o.timeoutMs;
    const accepted = new Promise<void>((resolve) => (this.acceptedResolve = resolve));
    if (this.out) this.acceptedResolve?.();
    let timer: NodeJS.Timeout | undefined;
    let stop = false;
    const overdue = (dir: 'send' | 'receive') =>
      this.o.hooks.ioError(timedOut(`no connection within ${this.o.timeoutMs} ms`), dir, ex, 0, 0);
    try {
      await new Promise<void>((resolve, reject) => {
        let inDone = false;
        let outDone = !!this.out;
        timer = setTimeout(() => reject(overdue(inDone ? 'send' : 'receive')), Math.max(1, deadline - Date.now()));
        void accepted.then(() => {
          outDone = true;
          if (inDone) resolve();
        });
        const attempt = (delay: number) => {
          if (stop || this.closing) return;
          this.dial().then(
            (verdict) => {
              if (verdict === 'ok') {
                inDone = true;
                if (outDone) resolve();
              } else if (verdict === 'retry') {
                setTimeout(() => attempt(Math.min(500, delay * 2)), delay);
              } else {
                reject(this.o.hooks.protocol(verdict, 0, 0, ex));
              }
            },
            () => setTimeout(() => attempt(Math.min(500, delay * 2)), delay),
          );
        };
        attempt(20);
      });
    } finally {
      stop = true;
      clearTimeout(timer);
    }
  }

  private acceptedResolve: (() => void) | null = null;
  /** The connection attempt in progress (destroyed by close()). */
  private dialing: Socket | null = null;

  /** One connection attempt to the predecessor: 'ok', 'retry' (refused, or another generation), or a fatal reason. */
  private dial(): Promise<'ok' | 'retry' | string> {
    return new Promise((resolve, reject) => {
      const ep = this.o.prev;
      this.phase = 'hello';
      this.helloGot = 0;
      this.streamPos = 0;
      this.readOff = 0;
      this.hdrGot = 0;
      this.direct = false;
      this.paused = false;
      this.pendStart = this.pendEnd = 0;
      const s = connect({
        ...('path' in ep ? { path: ep.path } : { host: ep.host, port: ep.port }),
        noDelay: true,
        onread: { buffer: this.nextBuffer, callback: (n: number) => this.onRead(n) },
      });
      this.dialing = s;
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        this.onHello = null;
        s.destroy();
        reject(e);
      };
      s.once('error', fail);
      s.once('close', () => fail(lost('closed before the handshake')));
      s.once('connect', () => {
        s.write(encodeHello(this.o.generation, this.o.rank, this.o.worldSize));
      });
      this.onHello = (magic, gen, rank, world) => {
        settled = true;
        this.onHello = null;
        this.dialing = null;
        if (this.closing) {
          s.destroy();
          resolve('retry'); // closed while dialling: connect() stops retrying
          return;
        }
        if (magic !== HELLO_MAGIC) {
          s.destroy();
          resolve(`the endpoint of rank ${this.prevRank} answered with something that is not a ring handshake (magic 0x${magic.toString(16)}); check the ring endpoints`);
          return;
        }
        if (gen !== this.o.generation) {
          this.o.hooks.stale({ frameGeneration: gen, connection: true });
          s.destroy();
          resolve('retry');
          return;
        }
        if (rank !== this.prevRank || world !== this.o.worldSize) {
          s.destroy();
          resolve(`the endpoint of rank ${this.prevRank} answered as rank ${rank} of ${world} (this ring: ${this.o.worldSize} ranks); check the ring endpoints`);
          return;
        }
        s.removeAllListeners('error');
        s.removeAllListeners('close');
        s.on('error', (e) => this.linkDown(e, 'receive'));
        s.on('close', () => this.linkDown(lost(`connection from rank ${this.prevRank} closed`), 'receive'));
        this.in = s;
        resolve('ok');
      };
    });
  }

  /** A client connected to this rank's listening socket: keep it as `out` if it is the successor of this generation. */
  private onConnection(s: Socket): void {
    s.setNoDelay(true);
    const hello = Buffer.alloc(HELLO_BYTES);
    let got = 0;
    const onData = (b: Buffer) => {
      if (got >= HELLO_BYTES) return; // nothing is expected after the handshake
      const t = Math.min(HELLO_BYTES - got, b.length);
      b.copy(hello, got, 0, t);
      got += t;
      if (got < HELLO_BYTES) return;
      const magic = hello.readUInt32LE(0);
      const gen = hello.readUInt32LE(4);
      const rank = hello.readUInt32LE(8);
      const world = hello.readUInt32LE(12);
      s.write(encodeHello(this.o.generation, this.o.rank, this.o.worldSize));
      if (magic !== HELLO_MAGIC || gen !== this.o.generation || rank !== this.nextRank || world !== this.o.worldSize || this.out || this.closing) {
        if (magic === HELLO_MAGIC && gen !== this.o.generation) this.o.hooks.stale({ frameGeneration: gen, connection: true });
        s.end();
        s.destroySoon();
        return;
      }
      this.out = s;
      s.on('error', (e) => this.linkDown(e, 'send'));
      s.on('close', () => this.linkDown(lost(`connection to rank ${this.nextRank} closed`), 'send'));
      this.acceptedResolve?.();
    };
    s.on('data', onData);
    s.on('error', () => s.destroy());
  }

  /** A connection failed: fail the running exchange, or remember it for the next one. */
  private linkDown(e: Error, dir: 'send' | 'receive'): void {
    if (this.closing) return;
    const code = (e as { code?: string }).code;
    const err = code === 'SGT_LOST' ? e : lost(`${dir === 'send' ? `connection to rank ${this.nextRank}` : `connection from rank ${this.prevRank}`} failed: ${e.message} (${code ?? 'no code'})`);
    if (this.ex) this.finish(this.o.hooks.ioError(err, dir, this.ex, dir === 'receive' ? this.step : 0, dir === 'receive' ? this.chunk : 0));
    else this.broken ??= { err, dir };
  }

  /** Runs one exchange: sends its initial frames, consumes already-read bytes, resumes reading; resolves when all is sent and received. */
  run(ex: NetExchange): Promise<void> {
    if (this.broken) return Promise.reject(this.o.hooks.ioError(this.broken.err, this.broken.dir, ex, 0, 0));
    const inSock = this.in;
    if (!inSock || !this.out) return Promise.reject(this.o.hooks.ioError(lost('not connected'), 'receive', ex, 0, 0));
    const words = (NET_HEADER_BYTES / 4) * ex.sendCount;
    if (this.slab.length < words) {
      this.slab = new Uint32Array(Math.max(words, this.slab.length * 2));
      this.slabU8 = new Uint8Array(this.slab.buffer);
    }
    return new Promise<void>((resolve, reject) => {
      this.ex = ex;
      this.k = 0;
      this.sent = 0;
      this.writesPending = 0;
      this.lastRecv = this.lastSend = Date.now();
      const tick = Math.max(5, Math.min(1000, Math.floor(this.o.timeoutMs / 8)));
      const watchdog = setInterval(() => this.watch(), tick);
      this.settle = (e?: Error) => {
        clearInterval(watchdog);
        this.settle = null;
        this.ex = null;
        if (e) reject(e);
        else resolve();
      };
      for (const o of ex.initial) this.send(o);
      if (!this.ex) return; // failed while sending
      if (ex.recvCount === 0) {
        this.maybeDone();
        return;
      }
      if (this.paused) {
        const more = this.pendEnd > this.pendStart ? this.consume(this.pendStart, this.pendEnd) : true;
        if (more && this.ex) {
          this.paused = false;
          inSock.resume();
        }
      }
    });
  }

  private watch(): void {
    const ex = this.ex;
    if (!ex) return;
    const now = Date.now();
    if (this.k < ex.recvCount && now - this.lastRecv > this.o.timeoutMs) {
      this.finish(this.o.hooks.ioError(timedOut('receive timed out'), 'receive', ex, ex.expect(this.k).step, ex.expect(this.k).chunk));
    } else if (this.writesPending > 0 && now - this.lastSend > this.o.timeoutMs) {
      this.finish(this.o.hooks.ioError(timedOut('send timed out'), 'send', ex, this.sendStep, this.sendChunk));
    }
  }

  /** Settles the running exchange. On failure reading stops for good: no later read may land in the caller's array. */
  private finish(e?: Error): void {
    if (e) this.in?.destroy();
    this.settle?.(e);
  }

  private maybeDone(): void {
    const ex = this.ex;
    if (ex && this.k === ex.recvCount && this.sent === ex.sendCount && this.writesPending === 0) this.finish();
  }

  /** Writes one frame (header slot from the slab, payload without copying, zero padding to 4 bytes) as one writev. */
  private readonly send = (o: NetOutgoing): void => {
    const ex = this.ex;
    if (!ex) return;
    const out = this.out as Socket;
    const bytes = o.payload?.byteLength ?? 0;
    const slot = this.sent * (NET_HEADER_BYTES / 4);
    const h = this.slab.subarray(slot, slot + NET_HEADER_BYTES / 4);
    encodeNetHeader({ gen: this.o.generation, op: ex.op, seq: ex.seq, step: o.step, chunk: o.chunk, from: this.o.rank, len: ex.len, payloadBytes: bytes }, h);
    this.sent++;
    this.writesPending++;
    this.sendStep = o.step;
    this.sendChunk = o.chunk;
    if (this.writesPending === 1) this.lastSend = Date.now();
    const done = (err?: Error | null) => {
      if (err) {
        if (this.ex === ex) this.linkDown(err, 'send');
        return;
      }
      this.writesPending--;
      this.lastSend = Date.now();
      this.o.hooks.sent(bytes);
      if (this.ex === ex) this.maybeDone();
    };
    const header = this.slabU8.subarray(slot * 4, slot * 4 + NET_HEADER_BYTES);
    const pad = (4 - (bytes & 3)) & 3;
    out.cork();
    if (!o.payload || bytes === 0) {
      out.write(header, done);
    } else {
      out.write(header);
      const p = new Uint8Array(o.payload.buffer, o.payload.byteOffset, bytes);
      if (pad) {
        out.write(p);
        out.write(ZERO_PAD.subarray(0, pad), done);
      } else {
        out.write(p, done);
      }
    }
    out.uncork();
  };

  // ---- receive -------------------------------------------------------------------------------------------------

  /**
   * The buffer for the socket's next read: inside a copy landing (all-gather, broadcast) with enough bytes left, the
   * destination itself, so the kernel copies straight into the caller's array; otherwise the read buffer from byte
   * (stream position mod 4), so that a float at a 4-aligned stream offset is 4-aligned in the buffer.
   */
  private readonly nextBuffer = (): Uint8Array => {
    const copy = this.land.copy;
    if (copy && this.ex && !this.drain && this.hdrGot === NET_HEADER_BYTES && this.payloadLeft >= DIRECT_MIN_BYTES) {
      this.direct = true;
      return copy.subarray(this.payloadPos, this.payloadPos + this.payloadLeft);
    }
    this.direct = false;
    return this.views[(this.readOff = this.streamPos & 3)];
  };

  /** onread callback: n bytes landed at views[readOff], or straight in the destination. Returns false to pause reading. */
  private onRead(n: number): boolean {
    this.streamPos = (this.streamPos + n) | 0;
    if (this.direct) {
      this.payloadPos += n;
      this.payloadLeft -= n;
      this.lastRecv = Date.now();
      const ex = this.ex;
      if (this.payloadLeft > 0 || this.padLeft > 0 || !ex) return true;
      return this.frameDone(ex);
    }
    const start = this.readOff;
    return this.consume(start, start + n);
  }

  /** The current frame is complete: count it and let the exchange send what it releases. False: stop consuming. */
  private frameDone(ex: NetExchange): boolean {
    this.hdrGot = 0;
    if (this.drain) return true;
    this.k++;
    this.o.hooks.received(this.land.bytes);
    try {
      ex.landed(this.step, this.chunk, this.send);
    } catch (e) {
      this.finish(e as Error);
      return false;
    }
    if (this.ex !== ex) return false; // failed while sending
    if (this.k === ex.recvCount) this.maybeDone();
    return true;
  }

  /** Consumes read-buffer bytes [off, end); pauses (returns false) when the exchange has all its frames or none runs. */
  private consume(off: number, end: number): boolean {
    const rb = this.rbuf;
    while (off < end) {
      if (this.phase === 'hello') {
        const t = Math.min(HELLO_BYTES - this.helloGot, end - off);
        rb.copy(this.hello, this.helloGot, off, off + t);
        this.helloGot += t;
        off += t;
        if (this.helloGot < HELLO_BYTES) continue;
        const v = new DataView(this.hello.buffer);
        this.phase = 'frames';
        this.onHello?.(v.getUint32(0, true), v.getUint32(4, true), v.getUint32(8, true), v.getUint32(12, true));
        if (this.in === null) return false; // refused: this socket is being destroyed
        continue;
      }
      const ex = this.ex;
      if (!ex || this.k >= ex.recvCount) {
        this.pendStart = off;
        this.pendEnd = end;
        this.paused = true;
        return false;
      }
      if (this.hdrGot < NET_HEADER_BYTES) {
        const t = Math.min(NET_HEADER_BYTES - this.hdrGot, end - off);
        rb.copy(this.hdrU8, this.hdrGot, off, off + t);
        this.hdrGot += t;
        off += t;
        if (this.hdrGot < NET_HEADER_BYTES) continue;
        if (!this.startFrame(ex)) return false;
      }
      if (this.payloadLeft > 0) {
        const t = Math.min(this.payloadLeft, end - off);
        if (!this.drain) {
          if (this.land.add) this.addPiece(off, t);
          else if (this.land.copy) rb.copy(this.land.copy, this.payloadPos, off, off + t);
        }
        this.payloadPos += t;
        this.payloadLeft -= t;
        off += t;
        if (!this.drain) this.lastRecv = Date.now();
      }
      if (this.payloadLeft === 0 && this.padLeft > 0) {
        const t = Math.min(this.padLeft, end - off);
        this.padLeft -= t;
        off += t;
      }
      if (this.payloadLeft === 0 && this.padLeft === 0 && !this.frameDone(ex)) return false;
    }
    this.pendStart = this.pendEnd = 0;
    return true;
  }

  /** Validates a complete header against the exchange's next expected frame; sets up its landing (or a drain). */
  private startFrame(ex: NetExchange): boolean {
    const h = this.hdr;
    const want = ex.expect(this.k);
    if (h[0] !== FRAME_MAGIC) {
      this.finish(this.o.hooks.protocol(`${ex.op} #${ex.seq}: stream out of sync (frame magic 0x${h[0].toString(16)}, expected 0x${FRAME_MAGIC.toString(16)})`, want.step, want.chunk, ex));
      return false;
    }
    const payload = h[9];
    this.payloadLeft = payload;
    this.padLeft = (4 - (payload & 3)) & 3;
    this.payloadPos = 0;
    if (h[1] !== this.o.generation) {
      // A frame of another generation (only a bug or a foreign process can put one here): drained, counted, logged.
      this.drain = true;
      this.o.hooks.stale({ frameGeneration: h[1], op: OPS[h[2]] ?? String(h[2]) });
      return true;
    }
    this.drain = false;
    const op = OPS[h[2]] ?? `op#${h[2]}`;
    const len = h[7] + h[8] * 0x1_0000_0000;
    if (op !== ex.op || h[3] !== ex.seq >>> 0 || h[4] !== want.step || h[5] !== want.chunk || h[6] !== this.prevRank || len !== ex.len) {
      this.finish(
        this.o.hooks.protocol(
          `expected ${ex.op} #${ex.seq} step ${want.step} chunk ${want.chunk} len ${ex.len} from rank ${this.prevRank}, ` +
            `got ${op} #${h[3]} step ${h[4]} chunk ${h[5]} len ${len} from rank ${h[6]} ` +
            `(ranks must call the same collectives in the same order with equal lengths)`,
          want.step,
          want.chunk,
          ex,
        ),
      );
      return false;
    }
    this.step = want.step;
    this.chunk = want.chunk;
    this.land = ex.landing(want.step, want.chunk);
    if (payload !== this.land.bytes) {
      this.finish(this.o.hooks.protocol(`${ex.op} step ${want.step} chunk ${want.chunk}: payload ${payload} bytes, expected ${this.land.bytes}`, want.step, want.chunk, ex));
      return false;
    }
    this.lastRecv = Date.now();
    return true;
  }

  /** Sum t payload bytes at read-buffer offset `off` into land.add; a float split across reads goes through `carry`. */
  private addPiece(off: number, t: number): void {
    const dst = this.land.add as Float32Array;
    let pos = this.payloadPos;
    const end = off + t;
    if (pos & 3) {
      const need = Math.min(4 - (pos & 3), t);
      this.rbuf.copy(this.carryU8, pos & 3, off, off + need);
      off += need;
      pos += need;
      if ((pos & 3) === 0) dst[(pos >> 2) - 1] += this.carry[0];
    }
    const whole = (end - off) >> 2;
    if (whole > 0) {
      addAt(dst, pos >> 2, this.rf32, off >> 2, whole); // off is 4-aligned here: payloads start aligned in the stream
      off += whole * 4;
      pos += whole * 4;
    }
    if (off < end) this.rbuf.copy(this.carryU8, 0, off, end);
  }

  /**
   * Closes both connections and the listener; a running exchange fails with `reason` (through hooks.ioError).
   * A completed exchange has had every write callback, so its bytes are in the kernel: `out` is ended (FIN after
   * them) and destroyed once flushed, without waiting for the successor, which may not be reading any more.
   */
  close(lingerMs: number, reason?: Error): Promise<void> {
    if (this.ex && reason) this.finish(this.o.hooks.ioError(reason, 'receive', this.ex, this.step, this.chunk));
    this.closing = true;
    this.acceptedResolve?.();
    this.dialing?.destroy();
    this.in?.destroy();
    this.server?.close();
    const out = this.out;
    if (!out || out.destroyed) return Promise.resolve();
    if (lingerMs <= 0) {
      out.destroy();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        out.destroy();
        resolve();
      };
      const t = setTimeout(done, lingerMs);
      out.end(done);
    });
  }
}

/** dst[d + i] += src[s + i] for i < n; unrolled by 8 as ring.ts's addInto (V8 does not vectorise). */
function addAt(dst: Float32Array, d: number, src: Float32Array, s: number, n: number): void {
  const m = n & ~7;
  let i = 0;
  for (; i < m; i += 8) {
    const a0 = dst[d + i] + src[s + i];
    const a1 = dst[d + i + 1] + src[s + i + 1];
    const a2 = dst[d + i + 2] + src[s + i + 2];
    const a3 = dst[d + i + 3] + src[s + i + 3];
    const a4 = dst[d + i + 4] + src[s + i + 4];
    const a5 = dst[d + i + 5] + src[s + i + 5];
    const a6 = dst[d + i + 6] + src[s + i + 6];
    const a7 = dst[d + i + 7] + src[s + i + 7];
    dst[d + i] = a0;
    dst[d + i + 1] = a1;
    dst[d + i + 2] = a2;
    dst[d + i + 3] = a3;
    dst[d + i + 4] = a4;
    dst[d + i + 5] = a5;
    dst[d + i + 6] = a6;
    dst[d + i + 7] = a7;
  }
  for (; i < n; i++) dst[d + i] += src[s + i];
}
