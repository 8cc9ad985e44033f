// `sigmatrain launch --nproc-per-node N`: starts and supervises this machine's workers (one per GPU with --gpus).
import { createLogger } from '../../shared/log.js';
import { gpusOf, intFlag, load, nodeName, passThrough, type ParsedArgs } from './args.js';

export async function launchCommand(p: ParsedArgs): Promise<number> {
  const config = load(p);
  const log = createLogger({ role: 'launcher', level: config.log.level });
  const nproc = intFlag(p, 'nproc-per-node', { min: 1 });
  const { Launcher } = await import('../launch.js');
  const l = new Launcher({ nproc, coordinator: config.dist.coordinator, nodeName: nodeName(p), configArgs: passThrough(p), gpus: gpusOf(p), maxRestarts: intFlag(p, 'max-restarts', { min: 0, fallback: 3 }) }, log);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => l.signal('SIGTERM'));
  l.start();
  return l.wait();
}
