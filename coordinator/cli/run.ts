// `sigmatrain run --workers N`: a coordinator and N local workers on this machine, with the progress bar on a terminal.
import { createLogger } from '../../shared/log.js';
import { checkWorkers, gpusOf, intFlag, load, passThrough, type ParsedArgs } from './args.js';
import { printSummary, report, runCoordinator } from './job.js';

export async function runCommand(p: ParsedArgs): Promise<number> {
  const config = load(p);
  const gpus = gpusOf(p);
  const workers = intFlag(p, 'workers', { min: 1, fallback: gpus?.length ?? 2 });
  checkWorkers(workers, config, '--workers');
  // On a terminal one writer owns it: our log and the workers' (NDJSON through pipes) print one line per record
  // above the progress bar. Off a terminal: NDJSON on stdout, workers' straight through.
  const { Terminal } = await import('../terminal.js');
  const terminal = process.stdout.isTTY && process.stderr.isTTY ? new Terminal() : undefined;
  const log = createLogger({ role: 'coordinator', level: config.log.level, ...(terminal ? { destination: terminal.stream() } : {}) });
  const c = await runCoordinator(config, p, log, workers, terminal);
  const { Launcher } = await import('../launch.js');
  const l = new Launcher({
    nproc: workers, coordinator: config.dist.coordinator, nodeName: 'local', configArgs: passThrough(p), gpus, maxRestarts: intFlag(p, 'max-restarts', { min: 0, fallback: 3 }),
    ...(terminal ? { output: (line: string) => terminal.line(line) } : {}),
    // Nobody is left to train: end the job now instead of waiting for workers that will not come.
    onAllGone: (why) => {
      log.error(`${why}: ending the job`);
      c.requestStop(why);
    },
  }, log);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => c.requestStop(`${sig} received`));
  const job = c.run();
  if (!c.finishedBefore) l.start();
  const s = await job;
  // Workers leave on the coordinator's stop; any still there after a grace period are told to go.
  const grace = setTimeout(() => l.signal('SIGTERM'), 15_000);
  const code = await l.wait();
  clearTimeout(grace);
  printSummary(log, s);
  await report(c.runDir, log);
  return code;
}
