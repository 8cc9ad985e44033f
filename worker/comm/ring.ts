// Ring collectives: all-reduce = reduce-scatter + all-gather, 2(N-1) steps, pipelined in chunks, in place on
// Float32Arrays; broadcast and barrier. Two data planes carry the frames (RingOptions.dataPlane):
// net (default): node:net stream connections with fixed headers, payloads read straight into the caller's array (net_link.ts);
// zmq: every rank binds a ZeroMQ PULL at `listen` and connects a PUSH to its successor's endpoint (`next`).

import { Pull, Push } from 'zeromq';
import { CommError, type CommErrorDetails, type CommFailure } from './errors.js';
import { decodeHeader, encodeHeader, type OpName } from './header.js';
import { NetLink, parseEndpoint, type Landing, type NetEndpoint, type NetExchange } from './net_link.js';
import { chunkSpan, chunksPerSegment, mod, recvSegment } from './schedule.js';

export interface RingOptions {
  rank: number;
  worldSize: number;
  /** Endpoint this rank binds its PULL on, e.g. ipc:///tmp/job-gen3-rank1.sock or tcp://10.0.0.2:7101. */
  listen: string;
  /** The successor's `listen` endpoint (rank (r+1) mod N). */
  next: string;
  /** The predecessor's `listen` endpoint (rank (r-1) mod N); the net plane connects to it. Required for dataPlane 'net'. */
  prev?: string;
  /**
   * What carries the frames. 'net' (default): one node:net connection per ring edge (unix socket for ipc://, TCP for
   * tcp://), payloads read from one reused buffer straight into the caller's array; a closed or reset connection fails
   * the collective at once (reason 'lost'). 'zmq': ZeroMQ PUSH/PULL, a buffer per received message; a dead peer is
   * found by the timeout. Same schedule, same arithmetic, bitwise-identical results.
   */
  dataPlane?: DataPlane;
  /** Ring generation (elastic membership); frames of other generations are dropped. Default 0. */
  generation?: number;
  /** Target payload bytes per message (default DEFAULT_CHUNK_BYTES; see bench:allreduce). */
  chunkBytes?: number;
  /** A wait on a peer (one receive or one send) longer than this fails the collective with CommError 'timeout'. Default 30 s. */
  timeoutMs?: number;
  /** ZeroMQ high-water marks in messages (not bytes): small, since messages are MB-sized. Default 4. zmq plane only. */
  highWaterMark?: number;
  /** How long close() lets queued frames drain to the successor after the final barrier. Default min(timeoutMs, 2000). */
  lingerMs?: number;
  /** Kernel socket buffer (SO_SNDBUF / SO_RCVBUF) in bytes; -1 keeps the OS default. Default -1. zmq plane only (node:net cannot set it). */
  socketBufferBytes?: number;
  logger?: CommLogger;
}

export type DataPlane = 'net' | 'zmq';
export const DATA_PLANES: readonly DataPlane[] = ['net', 'zmq'];
export const DEFAULT_DATA_PLANE: DataPlane = 'net';

/** The subset of a pino logger the ring uses (passed in, never global). */
export interface CommLogger {
  warn(obj: object, msg: string): void;
}

export interface RingStats {
  /** Payload bytes handed to the data plane (zmq) or written to the socket (net) / received (headers excluded). */
  bytesSent: number;
  bytesReceived: number;
  /** Frames (zmq, net) and connections (net) dropped because they carried another generation. */
  staleDropped: number;
  /** Collectives completed (including the open/close handshakes). */
  collectives: number;
}

/**
 * Measured on the 2-core build machine (bench:allreduce, 2 ranks, 4–64 MB): CPU per GB reduced is lowest for 1–2 MB
 * chunks (0.7–0.85 s/GB per rank) against ~1.0 at 512 KB; 4 MB is no better and pipelines less. Hence 1 MB.
 */
export const DEFAULT_CHUNK_BYTES = 1 << 20;
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * glibc malloc settings for a process that runs a Ring; the launcher should put them in the worker's environment
 * (they are read at process start). ZeroMQ mallocs a fresh buffer per received frame (0.1–4 MB) and V8 frees it
 * at GC; with glibc's default dynamic thresholds the heap top is trimmed and re-faulted all the time. Measured on
 * the 2-core build machine, 2 ranks, 1 MB chunks: at 4 MB all-reduces minor page faults per MB 100 → 17 and CPU
 * per GB 0.89 → 0.72 s (ipc), 1.05 → 0.80 s (tcp); no clear difference at ≥ 64 MB. Costs up to 128 MB of freed
 * memory kept per process.
 */
export const RING_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_MMAP_THRESHOLD_: String(8 << 20),
  MALLOC_TRIM_THRESHOLD_: String(128 << 20),
});
export const DEFAULT_HWM = 4;

/** One outgoing message: header fields step/chunk plus an optional payload that ZeroMQ sends without copying. */
interface Outgoing {
  step: number;
  chunk: number;
  payload?: ArrayBufferView;
}

/**
 * One collective as seen by one rank: how many frames it receives (in FIFO order, which `expect` names) and sends,
 * what it can send right away, and what to do with each received payload (which may release further sends).
 */
interface Exchange {
  op: OpName;
  seq: number;
  len: number;
  recvCount: number;
  sendCount: number;
  initial: Outgoing[];
  expect(k: number): { step: number; chunk: number };
  onFrame(step: number, chunk: number, payload: Buffer | undefined, send: (o: Outgoing) => void): void;
}

/** The exchange as the net plane runs it (payloads land in place instead of arriving as buffers). */
type AnyExchange = Exchange | NetExchange;

type State = 'new' | 'open' | 'failed' | 'closed';

export class Ring {
  readonly rank: number;
  readonly worldSize: number;
  readonly generation: number;
  readonly chunkBytes: number;
  readonly timeoutMs: number;
  readonly dataPlane: DataPlane;
  private readonly opts: RingOptions;
  private readonly prev: number;
  private readonly nextRank: number;
  private pull: Pull | null = null;
  private push: Push | null = null;
  private link: NetLink | null = null;
  private readonly endpoints: { listen: NetEndpoint; prev: NetEndpoint } | null = null;
  private state: State = 'new';
  private failure: CommError | null = null;
  private closing = false;
  private seq = 0;
  private inFlight = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private closed: Promise<void> | null = null;
  private readonly counters: RingStats = { bytesSent: 0, bytesReceived: 0, staleDropped: 0, collectives: 0 };

  constructor(opts: RingOptions) {
    const { rank, worldSize } = opts;
    const bad = (what: string): never => {
      throw new CommError({ reason: 'usage', rank, generation: opts.generation ?? 0 }, `invalid ring option ${what}`);
    };
    if (!Number.isSafeInteger(worldSize) || worldSize < 1) bad(`worldSize=${worldSize} (a positive integer)`);
    if (!Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize) bad(`rank=${rank} (0 ≤ rank < worldSize=${worldSize})`);
    const gen = opts.generation ?? 0;
    if (!Number.isSafeInteger(gen) || gen < 0) bad(`generation=${gen} (a non-negative integer)`);
    const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 4 || chunkBytes % 4 !== 0) bad(`chunkBytes=${chunkBytes} (a multiple of 4, ≥ 4)`);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) bad(`timeoutMs=${timeoutMs} (a positive integer)`);
    const hwm = opts.highWaterMark ?? DEFAULT_HWM;
    if (!Number.isSafeInteger(hwm) || hwm < 1) bad(`highWaterMark=${hwm} (a positive integer)`);
    if (worldSize > 1 && (typeof opts.listen !== 'string' || typeof opts.next !== 'string' || !opts.listen || !opts.next)) {
      bad(`listen=${JSON.stringify(opts.listen)} / next=${JSON.stringify(opts.next)} (endpoint strings)`);
    }
    const plane = opts.dataPlane ?? DEFAULT_DATA_PLANE;
    if (!DATA_PLANES.includes(plane)) bad(`dataPlane=${JSON.stringify(plane)} (one of ${DATA_PLANES.join(', ')})`);
    if (plane === 'net' && worldSize > 1) {
      if (typeof opts.prev !== 'string' || !opts.prev) bad(`prev=${JSON.stringify(opts.prev)} (the predecessor's endpoint string; the net data plane connects to it)`);
      if (gen > 0xffff_ffff) bad(`generation=${gen} (the net data plane carries generations as uint32)`);
      const listen = parseEndpoint(opts.listen, true);
      const prev = parseEndpoint(opts.prev as string, false);
      if (typeof listen === 'string') bad(`listen: ${listen}`);
      if (typeof prev === 'string') bad(`prev: ${prev}`);
      this.endpoints = { listen: listen as NetEndpoint, prev: prev as NetEndpoint };
    }
    this.opts = opts;
    this.rank = rank;
    this.worldSize = worldSize;
    this.generation = gen;
    this.chunkBytes = chunkBytes;
    this.timeoutMs = timeoutMs;
    this.dataPlane = plane;
    this.prev = mod(rank - 1, worldSize);
    this.nextRank = mod(rank + 1, worldSize);
  }

  get stats(): Readonly<RingStats> {
    return { ...this.counters };
  }

  /** Binds, connects, and runs a handshake barrier so that every rank is reachable before the first collective. */
  async open(): Promise<void> {
    if (this.state !== 'new') throw this.usage(`open() called in state '${this.state}'`);
    if (this.worldSize === 1) {
      this.state = 'open';
      return;
    }
    if (this.dataPlane === 'net') return this.openNet();
    const hwm = this.opts.highWaterMark ?? DEFAULT_HWM;
    const buf = this.opts.socketBufferBytes ?? -1;
    // receiveTimeout / sendTimeout turn a silent peer into EAGAIN after timeoutMs; linger is set again at close().
    this.pull = new Pull({ receiveHighWaterMark: hwm, receiveTimeout: this.timeoutMs, receiveBufferSize: buf, linger: 0 });
    this.push = new Push({
      sendHighWaterMark: hwm,
      sendTimeout: this.timeoutMs,
      sendBufferSize: buf,
      linger: 0,
      reconnectInterval: 20,
      reconnectMaxInterval: 500,
    });
    try {
      await this.pull.bind(this.opts.listen);
      this.push.connect(this.opts.next);
    } catch (e) {
      this.fail(this.error({ reason: 'socket' }, `cannot bind ${this.opts.listen} / connect ${this.opts.next}: ${(e as Error).message}`, e));
      this.closeSockets(0);
      throw this.failure;
    }
    this.state = 'open';
    await this.run(() => this.exchange(this.tokenRing('hello')));
  }

  private async openNet(): Promise<void> {
    const eps = this.endpoints as { listen: NetEndpoint; prev: NetEndpoint };
    const link = new NetLink({
      rank: this.rank,
      worldSize: this.worldSize,
      generation: this.generation,
      listen: eps.listen,
      prev: eps.prev,
      timeoutMs: this.timeoutMs,
      hooks: {
        ioError: (e, dir, ex, step, chunk) => this.ioError(e, dir, ex, step, chunk),
        protocol: (m, step, chunk, ex) => this.protocol(m, step, chunk, ex),
        stale: (w) => {
          this.counters.staleDropped++;
          this.opts.logger?.warn(
            { rank: this.rank, generation: this.generation, frameGeneration: w.frameGeneration, ...(w.op ? { op: w.op } : {}) },
            w.connection ? 'refused a ring connection of another generation' : 'dropped frame of another generation',
          );
        },
        received: (b) => (this.counters.bytesReceived += b),
        sent: (b) => (this.counters.bytesSent += b),
      },
    });
    this.link = link;
    try {
      await link.listen();
    } catch (e) {
      this.fail(this.error({ reason: 'socket' }, `cannot listen on ${this.opts.listen}: ${(e as Error).message}`, e));
      await link.close(0);
      throw this.failure;
    }
    this.state = 'open';
    await this.run(async () => {
      const hello = this.tokenRing('hello');
      await link.connect(hello);
      await this.exchange(hello);
    });
  }

  /** In place: every rank ends with the elementwise sum, bitwise identical on all ranks. Averaging is the caller's. */
  allReduceSum(data: Float32Array): Promise<void> {
    if (!(data instanceof Float32Array)) return Promise.reject(this.usage(`allReduceSum needs a Float32Array, got ${describe(data)}`));
    if (this.worldSize === 1) return this.run(async () => undefined);
    return this.run(() => this.exchange(this.dataPlane === 'net' ? this.allReduceNet(data) : this.allReducePlan(data)));
  }

  /** In place: every rank ends with root's bytes. All ranks must pass arrays of the same byte length. */
  broadcast(data: Float32Array | Uint8Array, root: number): Promise<void> {
    if (!Number.isSafeInteger(root) || root < 0 || root >= this.worldSize) {
      return Promise.reject(this.usage(`broadcast root=${root} (0 ≤ root < ${this.worldSize})`));
    }
    if (!(data instanceof Float32Array || data instanceof Uint8Array)) {
      return Promise.reject(this.usage(`broadcast needs a Float32Array or Uint8Array, got ${describe(data)}`));
    }
    if (this.worldSize === 1) return this.run(async () => undefined);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return this.run(() => this.exchange(this.dataPlane === 'net' ? this.broadcastNet(bytes, root) : this.broadcastPlan(bytes, root)));
  }

  /** Resolves once every rank has entered the barrier. */
  barrier(): Promise<void> {
    if (this.worldSize === 1) return this.run(async () => undefined);
    return this.run(() => this.exchange(this.tokenRing('barrier')));
  }

  /**
   * Healthy ring: a final barrier (so no rank closes while a peer still waits on its frames), then close with linger
   * so the last frames drain. Failed ring, or a collective still in flight: close at once with linger 0.
   * Never waits longer than one timeoutMs.
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'open' && this.worldSize > 1 && this.inFlight === 0) {
      try {
        await this.run(() => this.exchange(this.tokenRing('bye')));
      } catch {
        // failure recorded by fail(); fall through to an immediate close
      }
    }
    this.closing = true;
    if (this.state === 'open' && this.inFlight > 0) {
      this.fail(this.error({ reason: 'closed' }, `ring closed while a collective was in flight`));
    }
    const linger = this.state === 'open' ? (this.opts.lingerMs ?? Math.min(this.timeoutMs, 2000)) : 0;
    this.closeSockets(linger);
    const closingLink = this.link?.close(linger, new Error('ring closed'));
    this.state = 'closed';
    await closingLink;
    await this.chain;
  }

  // ---- collectives as exchanges -------------------------------------------------------------------------------

  /**
   * The all-reduce's schedule, the same on both planes: L floats in N segments of M chunks, 2(N−1) steps of M messages
   * each way, and the first sends (chunk j of this rank's own segment). `span(step, j)` is the received chunk's range.
   */
  private allReduceSchedule(data: Float32Array) {
    const N = this.worldSize;
    const r = this.rank;
    const L = data.length;
    const M = chunksPerSegment(L, N, 4, this.chunkBytes);
    const steps = 2 * (N - 1);
    const span = (step: number, j: number) => chunkSpan(L, N, M, recvSegment(r, N, step), j);
    const initial: Outgoing[] = [];
    for (let j = 0; j < M; j++) {
      const sp = chunkSpan(L, N, M, r, j);
      initial.push({ step: 0, chunk: j, payload: sp.end > sp.start ? data.subarray(sp.start, sp.end) : undefined });
    }
    const common = {
      op: 'allreduce' as const, seq: this.seq, len: L, recvCount: steps * M, sendCount: steps * M, initial,
      expect: (k: number) => ({ step: Math.floor(k / M), chunk: k % M }),
    };
    return { N, steps, span, common };
  }

  /**
   * All-reduce of L floats: segment k (of N) in M chunks; message (step s, chunk j) carries chunk j of
   * sendSegment(r, s). Received partial sums are reduced INTO the received buffer (p += mine) and that buffer is
   * forwarded, so the caller's array is only read during reduce-scatter and only written with final values.
   * All-gather forwards the received buffers too: once this resolves, ZeroMQ holds no reference into `data`
   * (every send from `data` happened at step 0 and was consumed before its segment's final value came back).
   */
  private allReducePlan(data: Float32Array): Exchange {
    const { N, steps, span, common } = this.allReduceSchedule(data);
    return {
      ...common,
      onFrame: (step, j, payload, send) => {
        const sp = span(step, j);
        const n = sp.end - sp.start;
        const got = payload?.byteLength ?? 0;
        if (got !== n * 4) throw this.protocol(`allreduce step ${step} chunk ${j}: payload ${got} bytes, expected ${n * 4}`, step, j);
        let p: Float32Array | undefined;
        if (n > 0) {
          p = viewF32(payload as Buffer, n);
          const mine = data.subarray(sp.start, sp.end);
          if (step < N - 2) {
            addInto(p, mine); // reduce-scatter: p = partial(prev) + mine, forwarded
          } else if (step === N - 2) {
            addInto(p, mine, true); // this rank owns segment r+1: final value into p (to send) and mine
          } else {
            mine.set(p); // all-gather: the owner's final value, bit for bit
          }
        }
        if (step + 1 < steps) send({ step: step + 1, chunk: j, payload: p });
      },
    };
  }

  /**
   * The broadcast's schedule, the same on both planes: L bytes in M chunks; the root sends them all at step 0
   * (`initial`, only on the root), relays forward each chunk, and the `last` rank before the root acknowledges.
   */
  private broadcastSchedule(bytes: Uint8Array, root: number) {
    const N = this.worldSize;
    const L = bytes.byteLength;
    const M = Math.max(1, Math.ceil(L / this.chunkBytes));
    const span = (j: number) => ({ start: Math.floor((j * L) / M), end: Math.floor(((j + 1) * L) / M) });
    const d = mod(this.rank - root, N);
    const base = { op: 'broadcast' as const, seq: this.seq, len: L };
    let initial: Outgoing[] | undefined;
    if (d === 0) {
      initial = [];
      for (let j = 0; j < M; j++) {
        const sp = span(j);
        initial.push({ step: 0, chunk: j, payload: sp.end > sp.start ? bytes.subarray(sp.start, sp.end) : undefined });
      }
    }
    return { M, span, base, initial, last: d === N - 1 };
  }

  /**
   * Broadcast along root → root+1 → … → root-1 in chunks; relays forward the received buffers. The last rank
   * acknowledges to its successor, the root, so the root returns only when its array is no longer referenced.
   */
  private broadcastPlan(bytes: Uint8Array, root: number): Exchange {
    const { M, span, base, initial, last } = this.broadcastSchedule(bytes, root);
    if (initial) {
      return { ...base, recvCount: 1, sendCount: M, initial, expect: () => ({ step: 1, chunk: 0 }), onFrame: () => undefined };
    }
    return {
      ...base,
      recvCount: M,
      sendCount: last ? 1 : M,
      initial: [],
      expect: (k) => ({ step: 0, chunk: k }),
      onFrame: (_step, j, payload, send) => {
        const sp = span(j);
        const got = payload?.byteLength ?? 0;
        if (got !== sp.end - sp.start) throw this.protocol(`broadcast chunk ${j}: payload ${got} bytes, expected ${sp.end - sp.start}`, 0, j);
        if (payload && got > 0) bytes.set(payload, sp.start);
        if (!last) send({ step: 0, chunk: j, payload: got > 0 ? payload : undefined });
        else if (j === M - 1) send({ step: 1, chunk: 0 });
      },
    };
  }

  /** Each rank's token travels N-1 hops; having seen all N-1 foreign tokens means every rank has entered. */
  private tokenRing(op: 'hello' | 'barrier' | 'bye'): Exchange & NetExchange {
    const N = this.worldSize;
    const onFrame = (step: number, _j: number, _payload: unknown, send: (o: Outgoing) => void) => {
      if (step + 1 < N - 1) send({ step: step + 1, chunk: 0 });
    };
    return {
      op,
      seq: this.seq,
      len: 0,
      recvCount: N - 1,
      sendCount: N - 1,
      initial: [{ step: 0, chunk: 0 }],
      expect: (k) => ({ step: k, chunk: 0 }),
      onFrame,
      landing: () => NO_PAYLOAD,
      landed: (step, j, send) => onFrame(step, j, undefined, send),
    };
  }

  /**
   * The all-reduce on the net plane: the same messages as allReducePlan, but partial sums are accumulated IN the
   * caller's array as the bytes arrive (data[seg] += received, which is bitwise the zmq plane's received + data[seg]:
   * float addition commutes) and forwarded from there; all-gather copies the owner's value in. So nothing is staged
   * and nothing allocated per byte. Safe: a segment's partial sum is overwritten (by its final value) only after that
   * value went round the ring, i.e. after the successor consumed the partial sum. During the collective the array
   * holds partial sums; a failed collective leaves it undefined (zmq: a mix of inputs and final values).
   */
  private allReduceNet(data: Float32Array): NetExchange {
    const { N, steps, span, common } = this.allReduceSchedule(data);
    return {
      ...common,
      landing: (step, j): Landing => {
        const sp = span(step, j);
        const n = sp.end - sp.start;
        if (n === 0) return NO_PAYLOAD;
        if (step <= N - 2) return { bytes: n * 4, add: data.subarray(sp.start, sp.end) }; // reduce-scatter
        return { bytes: n * 4, copy: new Uint8Array(data.buffer, data.byteOffset + sp.start * 4, n * 4) }; // all-gather
      },
      landed: (step, j, send) => {
        if (step + 1 >= steps) return;
        const sp = span(step, j);
        send({ step: step + 1, chunk: j, payload: sp.end > sp.start ? data.subarray(sp.start, sp.end) : undefined });
      },
    };
  }

  /** Broadcast on the net plane: broadcastPlan's messages, chunks read straight into `bytes` and relayed from there. */
  private broadcastNet(bytes: Uint8Array, root: number): NetExchange {
    const { M, span, base, initial, last } = this.broadcastSchedule(bytes, root);
    if (initial) {
      return { ...base, recvCount: 1, sendCount: M, initial, expect: () => ({ step: 1, chunk: 0 }), landing: () => NO_PAYLOAD, landed: () => undefined };
    }
    return {
      ...base,
      recvCount: M,
      sendCount: last ? 1 : M,
      initial: [],
      expect: (k) => ({ step: 0, chunk: k }),
      landing: (_step, j) => {
        const sp = span(j);
        return sp.end > sp.start ? { bytes: sp.end - sp.start, copy: bytes.subarray(sp.start, sp.end) } : NO_PAYLOAD;
      },
      landed: (_step, j, send) => {
        const sp = span(j);
        if (!last) send({ step: 0, chunk: j, payload: sp.end > sp.start ? bytes.subarray(sp.start, sp.end) : undefined });
        else if (j === M - 1) send({ step: 1, chunk: 0 });
      },
    };
  }

  // ---- engine --------------------------------------------------------------------------------------------------

  /** Serialises collectives: a second call waits for the first (ranks must call collectives in the same order). */
  private run(fn: () => Promise<void>): Promise<void> {
    const p = this.chain.then(async () => {
      if (this.failure) throw this.failure;
      if (this.state !== 'open') throw this.usage(`collective called on a ring in state '${this.state}' (call open() first)`);
      this.inFlight++;
      try {
        await fn();
        this.counters.collectives++;
      } finally {
        this.inFlight--;
      }
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Runs one exchange on the ring's data plane. */
  private async exchange(ex: AnyExchange): Promise<void> {
    if (!this.link) return this.exchangeZmq(ex as Exchange);
    this.seq++;
    try {
      await this.link.run(ex as NetExchange);
    } catch (e) {
      const err = e instanceof CommError ? e : this.error({ reason: 'protocol', op: ex.op, seq: ex.seq }, `${ex.op} #${ex.seq}: ${(e as Error).message}`, e);
      this.fail(err);
      throw err;
    }
  }

  /** zmq plane: a send loop and a receive loop, concurrently; one pending send() and receive() each. */
  private async exchangeZmq(ex: Exchange): Promise<void> {
    const push = this.push as Push;
    const pull = this.pull as Pull;
    const queue = new SendQueue(ex.initial);
    const enqueue = (o: Outgoing) => queue.push(o);

    const sendLoop = async () => {
      for (let k = 0; k < ex.sendCount; k++) {
        const o = await queue.next();
        const header = encodeHeader({ gen: this.generation, op: ex.op, seq: ex.seq, step: o.step, chunk: o.chunk, from: this.rank, len: ex.len });
        try {
          await push.send(o.payload ? [header, o.payload] : header);
        } catch (e) {
          throw this.ioError(e, 'send', ex, o.step, o.chunk);
        }
        this.counters.bytesSent += o.payload?.byteLength ?? 0;
      }
    };

    const recvLoop = async () => {
      let lastValid = Date.now(); // frames of other generations must not postpone the timeout forever
      for (let k = 0; k < ex.recvCount; ) {
        const want = ex.expect(k);
        let frames: Buffer[];
        try {
          frames = await pull.receive();
        } catch (e) {
          throw this.ioError(e, 'receive', ex, want.step, want.chunk);
        }
        if (this.failure) throw this.failure; // send side failed or close(): stop touching the caller's array
        const h = decodeHeader(frames[0]);
        if (typeof h === 'string') throw this.protocol(`${ex.op} #${ex.seq}: ${h}`, want.step, want.chunk, ex);
        if (h.gen !== this.generation) {
          this.counters.staleDropped++;
          if (Date.now() - lastValid > this.timeoutMs) throw this.ioError(Object.assign(new Error('stale frames only'), { code: 'EAGAIN' }), 'receive', ex, want.step, want.chunk);
          this.opts.logger?.warn({ rank: this.rank, generation: this.generation, frameGeneration: h.gen, op: h.op }, 'dropped frame of another generation');
          continue;
        }
        if (h.op !== ex.op || h.seq !== ex.seq || h.step !== want.step || h.chunk !== want.chunk || h.from !== this.prev || h.len !== ex.len) {
          throw this.protocol(
            `expected ${ex.op} #${ex.seq} step ${want.step} chunk ${want.chunk} len ${ex.len} from rank ${this.prev}, ` +
              `got ${h.op} #${h.seq} step ${h.step} chunk ${h.chunk} len ${h.len} from rank ${h.from} ` +
              `(ranks must call the same collectives in the same order with equal lengths)`,
            want.step,
            want.chunk,
            ex,
          );
        }
        lastValid = Date.now();
        const payload = frames.length > 1 ? frames[1] : undefined;
        this.counters.bytesReceived += payload?.byteLength ?? 0;
        ex.onFrame(h.step, h.chunk, payload, enqueue);
        k++;
      }
    };

    this.seq++;
    // A failed receive side aborts the queue, so a send loop waiting for work rejects too and nothing hangs.
    const received = recvLoop().catch((e: unknown) => {
      queue.abort(e);
      throw e;
    });
    try {
      await Promise.all([sendLoop(), received]);
    } catch (e) {
      const err = e instanceof CommError ? e : this.error({ reason: 'protocol', op: ex.op, seq: ex.seq }, `${ex.op} #${ex.seq}: ${(e as Error).message}`, e);
      this.fail(err);
      throw err;
    }
  }

  // ---- errors and teardown -------------------------------------------------------------------------------------

  private fail(err: CommError): void {
    if (!this.failure) this.failure = err;
    if (this.state === 'open') this.state = 'failed';
  }

  private closeSockets(lingerMs: number): void {
    // Linger on the PUSH lets the final frames (e.g. the 'bye' token) reach the successor; the PULL has nothing to flush.
    for (const [sock, linger] of [[this.push, lingerMs], [this.pull, 0]] as const) {
      if (!sock || sock.closed) continue;
      try {
        sock.linger = linger;
        sock.close();
      } catch {
        // closing an already-failed socket: nothing left to release
      }
    }
  }

  private error(d: Omit<CommErrorDetails, 'rank' | 'generation'>, message: string, cause?: unknown): CommError {
    return new CommError({ ...d, rank: this.rank, generation: this.generation }, `rank ${this.rank} (generation ${this.generation}): ${message}`, cause);
  }

  private usage(message: string): CommError {
    return this.error({ reason: 'usage' }, message);
  }

  private protocol(message: string, step: number, chunk: number, ex?: { op: string; seq: number }): CommError {
    return this.error({ reason: 'protocol', peer: this.prev, op: ex?.op, seq: ex ? ex.seq : this.seq - 1, step, chunk }, message);
  }

  private ioError(e: unknown, dir: 'send' | 'receive', ex: { op: string; seq: number }, step: number, chunk: number): CommError {
    const peer = dir === 'send' ? this.nextRank : this.prev;
    const code = (e as { code?: string }).code;
    let reason: CommFailure = 'socket';
    let what = `${dir} failed: ${(e as Error).message}`;
    if (this.closing) {
      reason = 'closed';
      what = `ring closed during ${dir}`;
    } else if (code === 'SGT_LOST') {
      // net plane: the peer's process died or closed its ring (the kernel closed or reset the connection)
      reason = 'lost';
      what = `${(e as Error).message}: rank ${peer} (${dir === 'send' ? this.opts.next : this.opts.prev}) died or left the ring`;
    } else if (code === 'EAGAIN') {
      reason = 'timeout';
      what =
        dir === 'send'
          ? `timed out after ${this.timeoutMs} ms sending to rank ${peer} (${this.opts.next}); successor dead or stuck`
          : `timed out after ${this.timeoutMs} ms waiting for rank ${peer}; predecessor (or a rank before it) dead or stuck`;
    }
    return this.error({ reason, peer, op: ex.op, seq: ex.seq, step, chunk }, `${ex.op} #${ex.seq} step ${step} chunk ${chunk}: ${what}`, e);
  }
}

/** FIFO of ready sends; the one consumer (the send loop) awaits next(). Aborted when the receive side fails. */
class SendQueue {
  private items: Outgoing[];
  private head = 0;
  private waiter: { resolve: (o: Outgoing) => void; reject: (e: unknown) => void } | null = null;
  private aborted: unknown = null;

  constructor(initial: Outgoing[]) {
    this.items = initial.slice();
  }

  push(o: Outgoing): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(o);
    } else {
      this.items.push(o);
    }
  }

  next(): Promise<Outgoing> {
    if (this.head < this.items.length) {
      const o = this.items[this.head];
      this.items[this.head++] = undefined as unknown as Outgoing; // release the payload reference
      return Promise.resolve(o);
    }
    if (this.aborted) return Promise.reject(this.aborted);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  abort(e: unknown): void {
    this.aborted = e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
    }
  }
}

const NO_PAYLOAD: Landing = Object.freeze({ bytes: 0 });

function describe(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

/** View a received frame as n floats without copying when 4-byte aligned (ZeroMQ's own buffers are); else copy. */
function viewF32(buf: Buffer, n: number): Float32Array {
  if (buf.byteOffset % 4 === 0) return new Float32Array(buf.buffer, buf.byteOffset, n);
  const copy = new Float32Array(n);
  new Uint8Array(copy.buffer).set(buf.subarray(0, n * 4));
  return copy;
}

/**
 * acc[i] += src[i] (shape (n,) each); with `writeBack`, also src[i] = the sum (one pass instead of add + copy).
 * Unrolled by 8 with the loads grouped before the stores: V8 does not vectorise, and this form measured
 * ~1.2 ns/element against ~2 ns for the plain loop on the 2-core build machine.
 */
function addInto(acc: Float32Array, src: Float32Array, writeBack = false): void {
  if (writeBack) {
    addBoth(acc, src);
    return;
  }
  const n = acc.length;
  const m = n & ~7;
  let i = 0;
  for (; i < m; i += 8) {
    const a0 = acc[i] + src[i];
    const a1 = acc[i + 1] + src[i + 1];
    const a2 = acc[i + 2] + src[i + 2];
    const a3 = acc[i + 3] + src[i + 3];
    const a4 = acc[i + 4] + src[i + 4];
    const a5 = acc[i + 5] + src[i + 5];
    const a6 = acc[i + 6] + src[i + 6];
    const a7 = acc[i + 7] + src[i + 7];
    acc[i] = a0;
    acc[i + 1] = a1;
    acc[i + 2] = a2;
    acc[i + 3] = a3;
    acc[i + 4] = a4;
    acc[i + 5] = a5;
    acc[i + 6] = a6;
    acc[i + 7] = a7;
  }
  for (; i < n; i++) acc[i] += src[i];
}

function addBoth(acc: Float32Array, src: Float32Array): void {
  // Both stores round the same double to float32, so acc and src end bit-identical.
  const n = acc.length;
  const m = n & ~3;
  let i = 0;
  for (; i < m; i += 4) {
    const a0 = acc[i] + src[i];
    const a1 = acc[i + 1] + src[i + 1];
    const a2 = acc[i + 2] + src[i + 2];
    const a3 = acc[i + 3] + src[i + 3];
    acc[i] = a0;
    acc[i + 1] = a1;
    acc[i + 2] = a2;
    acc[i + 3] = a3;
    src[i] = a0;
    src[i + 1] = a1;
    src[i + 2] = a2;
    src[i + 3] = a3;
  }
  for (; i < n; i++) {
    const a = acc[i] + src[i];
    acc[i] = a;
    src[i] = a;
  }
}
