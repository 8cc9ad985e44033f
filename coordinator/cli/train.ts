// `sigmatrain train`: the training loop in this one process (single-process Collective, console hooks), no coordinator.
import { createLogger } from '../../shared/log.js';
import { resultText } from '../../shared/summary.js';
import { load, resumeOf, runDirOf, type ParsedArgs } from './args.js';

export async function trainCommand(p: ParsedArgs): Promise<number> {
  const config = load(p);
  const log = createLogger({ role: 'worker', level: config.log.level });
  const { trainLocal } = await import('../../worker/train/local.js');
  let stop = false;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      stop = true;
    });
  }
  const runDir = runDirOf(p);
  log.info({ runDir }, `run dir ${runDir}`);
  const s = await trainLocal(config, log, { runDir, resume: resumeOf(p), stopRequested: () => stop });
  log.info(
    { summary: s },
    `${s.stoppedEarly ? 'stopped' : 'done'}: ${s.steps} steps, ${s.epochs} epochs in ${s.seconds.toFixed(1)} s (${s.samplesPerSecond.toFixed(1)} samples/s, ${s.backend}); ${resultText(s)}`,
  );
  return 0;
}
