// The run report: reads a run directory's record files and writes report.html (one self-contained page with charts)
// and report.md (the headline numbers as a table). Parts live in coordinator/report/; this file is the public API.
import { writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SigmaError } from '../shared/errors.js';
import { chartSpecs, markers, renderSvg, type ChartOptions } from './report/charts.js';
import { renderPage } from './report/html.js';
import { loadRun, type RunData } from './report/load.js';
import { summarize, summaryMarkdown, summaryRows, type RunSummary } from './report/summary.js';

export { loadRun, type RunData, type SkippedLine, type CoordinatorState } from './report/load.js';
export { summaryRows, fmt, MISSING, type RunSummary, type SummaryRow } from './report/summary.js';
export { CHART_TITLES, chartSpecs, downsample, markers, type Chart, type Marker } from './report/charts.js';

export interface ReportOptions extends ChartOptions {
  /** Page and markdown heading (default: "sigmatrain run <dir name>"). */
  title?: string;
}

/** The run's headline numbers as data (same values report.md prints). */
export async function summarizeRun(runDir: string): Promise<RunSummary> {
  return summarize(await loadRun(runDir));
}

async function write(path: string, text: string): Promise<void> {
  try {
    await writeFile(path, text);
  } catch (e) {
    throw new SigmaError('SGT_REPORT', `cannot write ${path}: ${(e as Error).message}; is the run dir writable?`, { cause: e });
  }
}

/** Writes <runDir>/report.html and <runDir>/report.md; resolves with their paths. */
export async function writeReport(runDir: string, opts: ReportOptions = {}): Promise<{ html: string; markdown: string }> {
  const run: RunData = await loadRun(runDir);
  const title = opts.title ?? `sigmatrain run ${basename(run.dir)}`;
  const summary = summarize(run);
  const charts = [];
  for (const chart of chartSpecs(run, opts)) charts.push({ chart, svg: chart.spec ? await renderSvg(chart.spec) : undefined });
  const html = renderPage({ title, run, rows: summaryRows(summary), charts, markers: markers(run), generatedAt: new Date() });
  const skipped = run.skipped.map((s) => `${s.file}:${s.line} (${s.reason})`);
  const paths = { html: join(run.dir, 'report.html'), markdown: join(run.dir, 'report.md') };
  await write(paths.html, html);
  await write(paths.markdown, summaryMarkdown(title, summary, skipped));
  return paths;
}
