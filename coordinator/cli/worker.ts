// `sigmatrain worker`: one replica (normally started by `launch` or `run`); its ring and metrics ports follow its local rank.
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXIT_INPUT_ERROR, isInputError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { intFlag, isLoopback, load, splitHostPort, type ParsedArgs } from './args.js';

export async function workerCommand(p: ParsedArgs): Promise<number> {
  try {
    return await runWorker(p);
  } catch (e) {
    if (!isInputError(e)) throw e;
    // Bad input (a config key, a data root, a corpus): tell the supervisor not to restart into the same error.
    console.error(e.message);
    return EXIT_INPUT_ERROR;
  }
}

async function runWorker(p: ParsedArgs): Promise<number> {
  const config = load(p);
  const workerId = p.flags.get('worker-id') ?? `${hostname()}-${process.pid}`;
  const localRank = intFlag(p, 'local-rank', { min: 0, fallback: 0 });
  const log = createLogger({ role: 'worker', level: config.log.level }).child({ workerId });
  const { host } = splitHostPort(config.dist.coordinator);
  const transport = config.dist.transport === 'auto' ? (isLoopback(host) ? 'ipc' : 'tcp') : config.dist.transport;
  const port = config.dist.ringPortBase + localRank;
  const ipc = `ipc://${join(tmpdir(), `sigmatrain-${process.pid}-${workerId.replace(/[^A-Za-z0-9_.-]/g, '_')}.sock`)}`;
  const { Worker } = await import('../../worker/runtime.js');
  const w = new Worker(config, {
    workerId,
    coordinator: `tcp://${config.dist.coordinator}`,
    ringEndpoint: transport === 'ipc' ? ipc : `tcp://${config.dist.ringHost}:${port}`,
    ringListen: transport === 'ipc' ? ipc : `tcp://0.0.0.0:${port}`,
    // Coordinator on the base port, worker with local rank r on base + 1 + r (deploy/prometheus/prometheus.yml).
    metricsPort: config.metrics.enabled ? (config.metrics.port === 0 ? 0 : config.metrics.port + 1 + localRank) : undefined,
  }, log);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => w.terminate());
  return w.run();
}
