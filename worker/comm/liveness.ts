// Liveness that survives long synchronous work. tfjs runs a step's forward and backward (and each Hessian-vector
// product) synchronously, so the training thread's heartbeat timer cannot fire during them; a step longer than
// dist.heartbeatTimeoutMs — a large model on a CPU, a big per-GPU batch — had the coordinator declare a healthy worker
// lost and re-form, again at every step. A worker thread with its own socket sends `worker.alive` meanwhile, as
// long as the training thread showed a sign of life (`touch`) within dist.busyTimeoutMs; past that it falls
// silent, so a hung process is still found lost.
import { once } from 'node:events';
import { Worker as Thread } from 'node:worker_threads';

export interface LivenessThreadData {
  coordinator: string;
  workerId: string;
  intervalMs: number;
  busyTimeoutMs: number;
  /** BigInt64Array[1]: Date.now() of the training thread's last touch. */
  clock: SharedArrayBuffer;
}

export class Liveness {
  private readonly clock = new BigInt64Array(new SharedArrayBuffer(8));
  private readonly thread: Thread;

  constructor(opts: Omit<LivenessThreadData, 'clock'>) {
    this.touch();
    this.thread = new Thread(new URL('./liveness_thread.js', import.meta.url), {
      workerData: { ...opts, clock: this.clock.buffer } satisfies LivenessThreadData,
    });
    this.thread.unref(); // never what keeps the process alive
  }

  /** The training thread is running its event loop now. */
  touch(): void {
    Atomics.store(this.clock, 0, BigInt(Date.now()));
  }

  /** Stops the thread (its socket closes at once). */
  async stop(): Promise<void> {
    const exited = once(this.thread, 'exit');
    this.thread.postMessage('stop');
    const timer = setTimeout(() => void this.thread.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}
