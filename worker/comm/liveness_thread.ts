// The liveness thread of a worker (see liveness.ts): its own DEALER to the coordinator, a `worker.alive` every
// interval while the training thread's last sign of life is within busyTimeoutMs.
import { parentPort, workerData } from 'node:worker_threads';
import { Dealer } from 'zeromq';
import { encode } from '../../shared/protocol/index.js';
import type { LivenessThreadData } from './liveness.js';

const data = workerData as LivenessThreadData;
const touched = new BigInt64Array(data.clock);
const dealer = new Dealer({
  routingId: `${data.workerId}/alive`,
  sendHighWaterMark: 4,
  reconnectInterval: 100,
  reconnectMaxInterval: 1000,
  linger: 0,
});
dealer.connect(data.coordinator);
// The coordinator never addresses this socket except to answer a bad message; drain whatever arrives.
void (async () => {
  for await (const _ of dealer) {
    // discarded
  }
})().catch(() => undefined);

let sending = false; // a zeromq socket takes one send at a time; a beat that finds one in flight is skipped
const timer = setInterval(() => {
  const busyMs = Math.max(0, Date.now() - Number(Atomics.load(touched, 0)));
  if (busyMs > data.busyTimeoutMs || sending) return; // hung: fall silent, the coordinator's timeout takes over
  sending = true;
  dealer.send(encode({ type: 'worker.alive', workerId: data.workerId, busyMs })).catch(() => undefined).finally(() => {
    sending = false;
  });
}, data.intervalMs);

parentPort!.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  dealer.close();
  parentPort!.close();
});
