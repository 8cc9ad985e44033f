// `sigmatrain report RUN_DIR`: writes the run's report.html (charts) and report.md from its own logs.
import { resolve } from 'node:path';
import { SigmaError } from '../../shared/errors.js';

export async function reportCommand(argv: string[]): Promise<number> {
  if (!argv[0] || argv[0].startsWith('-')) throw new SigmaError('SGT_CLI_USAGE', 'usage: sigmatrain report RUN_DIR');
  const { writeReport } = await import('../report.js');
  const r = await writeReport(resolve(argv[0]));
  console.log(`${r.html}\n${r.markdown}`);
  return 0;
}
