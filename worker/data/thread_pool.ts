// ThreadPool: N worker_threads fed from one FIFO of messages, one message in flight per thread. The data pools
// (DecodePool for images, AudioPool for speech) put their own messages through it; a thread that dies is replaced and
// the message it held is answered by the caller's `onLost`, so a crash costs that chunk's samples, not the run.

import { Worker } from 'node:worker_threads';
import { SigmaError } from '../../shared/errors.js';

interface Task<Run, R> {
  msg: Run;
  settle: (r: R) => void;
  fail: (e: Error) => void;
}

interface Slot<Run, R> {
  worker: Worker;
  task: Task<Run, R> | null;
}

export interface ThreadPoolOptions<Run, Done, R> {
  /** The thread's script (a compiled .js next to the pool's own module). */
  script: URL;
  threads: number;
  /** The reply's `type`; other messages and replies to another id are ignored (stale or foreign). */
  doneType: string;
  /** What a reply means to the caller. */
  resultOf: (done: Done) => R;
  /** The answer for a message whose thread died (error or exit) before replying. */
  onLost: (msg: Run, why: string) => R;
  /** Names the pool and its work in errors, e.g. ['DecodePool', 'decode']. */
  name: [pool: string, work: string];
}

export class ThreadPool<Run extends { id: number }, Done extends { type: string; id: number }, R> {
  private readonly slots: Slot<Run, R>[] = [];
  private readonly queue: Task<Run, R>[] = [];
  private nextId = 1;
  private closedFlag = false;

  constructor(private readonly o: ThreadPoolOptions<Run, Done, R>) {
    for (let i = 0; i < o.threads; i++) this.slots.push(this.spawn());
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Queue the message `build(id)` builds; resolves with its reply (or onLost's answer). */
  submit(build: (id: number) => Run): Promise<R> {
    if (this.closedFlag) {
      return Promise.reject(new SigmaError('SGT_DATA_INVALID', `${this.o.name[0]}.${this.o.name[1]} after close()`));
    }
    return new Promise<R>((settle, fail) => {
      this.queue.push({ msg: build(this.nextId++), settle, fail });
      this.pump();
    });
  }

  /** Stop every thread; messages still pending reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    const pending = [...this.queue, ...this.slots.flatMap((s) => (s.task ? [s.task] : []))];
    this.queue.length = 0;
    const [pool, work] = this.o.name;
    for (const t of pending) t.fail(new SigmaError('SGT_DATA_INVALID', `${pool} closed while a ${work} was pending`));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot<Run, R> {
    const worker = new Worker(this.o.script);
    const slot: Slot<Run, R> = { worker, task: null };
    worker.unref();
    worker.on('message', (m: Done) => {
      const task = slot.task;
      if (m.type !== this.o.doneType || !task || task.msg.id !== m.id) return; // stale or foreign: ignore
      slot.task = null;
      worker.unref();
      task.settle(this.o.resultOf(m));
      this.pump();
    });
    const lost = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return; // already replaced
      const task = slot.task;
      slot.task = null;
      if (this.closedFlag) return;
      this.slots[i] = this.spawn();
      if (task) task.settle(this.o.onLost(task.msg, why));
      this.pump();
    };
    worker.on('error', (e) => lost(e.message));
    worker.on('exit', (code) => lost(`thread exited with code ${code}`));
    return slot;
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.task) continue;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.ref(); // pending work keeps the process alive; an idle pool does not
      slot.worker.postMessage(task.msg);
    }
  }
}
