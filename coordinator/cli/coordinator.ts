// `sigmatrain coordinator [--workers N]`: the job's coordinator alone (workers come from `launch` or a Kubernetes Job).
import { createLogger } from '../../shared/log.js';
import { afterFinishOf, checkWorkers, intFlag, load, type ParsedArgs } from './args.js';
import { printSummary, report, runCoordinator } from './job.js';

export async function coordinatorCommand(p: ParsedArgs): Promise<number> {
  const config = load(p);
  const log = createLogger({ role: 'coordinator', level: config.log.level });
  const envName = process.env.WORLD_SIZE !== undefined ? 'WORLD_SIZE' : process.env.PET_NNODES !== undefined ? 'PET_NNODES' : undefined;
  const expect = intFlag(p, 'workers', { min: 1, fallback: envName ? process.env[envName] : config.dist.minWorkers, fallbackName: envName });
  checkWorkers(expect, config, p.flags.has('workers') ? '--workers' : envName ?? 'dist.minWorkers');
  const c = await runCoordinator(config, p, log, expect);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => c.requestStop(`${sig} received`));
  const s = await c.run();
  printSummary(log, s);
  await report(c.runDir, log);
  if (afterFinishOf(p) === 'serve' && !s.stoppedEarly) await c.serveFinished();
  return 0;
}
