// What `run` and `coordinator` share: building the coordinator from flags and config, the closing summary line, and
// the run report written after the job.
import type { Config } from '../../shared/config/index.js';
import type { Logger } from '../../shared/log.js';
import { resultText } from '../../shared/summary.js';
import { afterFinishOf, resumeOf, runDirOf, splitHostPort, type ParsedArgs } from './args.js';

export async function runCoordinator(config: Readonly<Config>, p: ParsedArgs, log: Logger, expect: number, terminal?: import('../terminal.js').Terminal) {
  const { Coordinator } = await import('../coordinator.js');
  const { port } = splitHostPort(config.dist.coordinator);
  const c = new Coordinator(config, { bind: `tcp://*:${port}`, runDir: runDirOf(p), expectWorkers: expect, resume: resumeOf(p), afterFinish: afterFinishOf(p), terminal }, log);
  if (config.metrics.enabled) await c.serveMetrics(config.metrics.host, config.metrics.port);
  return c;
}

export function printSummary(log: Logger, s: import('../coordinator.js').JobSummary): void {
  log.info(
    { summary: s },
    `${s.stoppedEarly ? 'stopped' : 'done'}: ${s.steps}/${s.totalSteps} steps in ${s.seconds.toFixed(1)} s (${s.samplesPerSecond.toFixed(1)} samples/s), ` +
      `${s.generations} generation(s), ${s.workerFailures} worker failure(s); ${resultText(s)}`,
  );
}

/** Writes the run report; failures to write it never fail the job that produced the run. */
export async function report(runDir: string, log: Logger): Promise<void> {
  try {
    const { writeReport } = await import('../report.js');
    const r = await writeReport(runDir);
    log.info({ html: r.html, markdown: r.markdown }, `report: ${r.html}`);
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'run report not written');
  }
}
