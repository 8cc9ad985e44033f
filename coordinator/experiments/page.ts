// An experiment's report as one set of formatted tables and charts, written twice: report.md (markdown tables) and
// report.html (one self-contained page — inline CSS and Vega-Lite charts rendered to inline SVG; no scripts, no network).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from '../report/charts.js';
import { esc } from '../report/html.js';

export interface Table {
  /** Stable id (HTML id="table-<id>"). */
  id: string;
  title: string;
  columns: string[];
  /** Formatted cells, one array per row, as many as columns. */
  rows: string[][];
  /** A sentence under the table. */
  note?: string;
}

export interface ChartSpec {
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

export interface Page {
  title: string;
  /** Paragraphs (plain text; markdown `code` spans are kept as they are in report.md, shown as code in HTML). */
  intro: string[];
  tables: Table[];
  charts: ChartSpec[];
  /** Closing paragraphs (findings, caveats). */
  notes: string[];
  /** Links to each run's own report, relative to the page. */
  links?: { label: string; href: string }[];
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function tableMarkdown(t: Table): string {
  const lines = [
    `| ${t.columns.map(cell).join(' | ')} |`,
    `| ${t.columns.map(() => '---').join(' | ')} |`,
    ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
  return lines.join('\n');
}

export function pageMarkdown(p: Page): string {
  const out = [`# ${p.title}`, '', ...p.intro.flatMap((x) => [x, '']), ...p.tables.flatMap((t) => [`## ${t.title}`, '', tableMarkdown(t), '', ...(t.note ? [t.note, ''] : [])])];
  if (p.notes.length) out.push('## Notes', '', ...p.notes.flatMap((x) => [x, '']));
  out.push(`Charts: [report.html](report.html).`, '');
  return out.join('\n');
}

/** Plain text with `code` spans to HTML. */
const inline = (s: string): string => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 6px 0; } code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #eef0f3; padding: 0 3px; border-radius: 3px; }
table { border-collapse: collapse; background: #fff; font-size: 12px; margin: 6px 0; }
th, td { border: 1px solid #e3e5e8; padding: 3px 6px; text-align: left; white-space: nowrap; }
th { background: #f0f2f5; } td { font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
section.chart { background: #fff; border: 1px solid #e3e5e8; border-radius: 6px; padding: 12px 14px; margin: 12px 0; }
section.chart .caption { font-size: 12px; color: #666; margin: 0 0 6px; }
section.chart svg { max-width: 100%; height: auto; display: block; }
.note { font-size: 12px; color: #555; }
footer { font-size: 11px; color: #888; margin-top: 24px; }
`;

function tableHtml(t: Table): string {
  const head = `<tr>${t.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  const note = t.note ? `<p class="note">${inline(t.note)}</p>` : '';
  return `<h2>${esc(t.title)}</h2><div class="scroll"><table id="table-${esc(t.id)}"><thead>${head}</thead><tbody>\n${body}\n</tbody></table></div>${note}`;
}

export async function pageHtml(p: Page, generatedAt: Date): Promise<string> {
  const charts: string[] = [];
  for (const c of p.charts) {
    const svg = await renderSvg(c.spec);
    charts.push(`<section class="chart" id="chart-${esc(c.id)}"><h2>${esc(c.title)}</h2><p class="caption">${inline(c.caption)}</p>\n${svg}\n</section>`);
  }
  const links = p.links?.length
    ? `<h2>Runs</h2><p class="note">Each run's own report: ${p.links.map((l) => `<a href="${esc(l.href)}">${esc(l.label)}</a>`).join(' · ')}</p>`
    : '';
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(p.title)}</title><style>${CSS}</style></head><body><main>`,
    `<h1>${esc(p.title)}</h1>`,
    ...p.intro.map((x) => `<p>${inline(x)}</p>`),
    ...p.tables.map(tableHtml),
    ...charts,
    ...(p.notes.length ? ['<h2>Notes</h2>', ...p.notes.map((x) => `<p>${inline(x)}</p>`)] : []),
    links,
    `<footer>Generated ${esc(generatedAt.toISOString())} by sigmatrain from the runs' steps.jsonl, evals.jsonl and diagnostics.jsonl.</footer>`,
    '</main></body></html>',
    '',
  ].join('\n');
}

/** Writes <dir>/report.md and <dir>/report.html; resolves with their paths. */
export async function writePage(dir: string, p: Page): Promise<{ html: string; markdown: string }> {
  const paths = { html: join(dir, 'report.html'), markdown: join(dir, 'report.md') };
  await writeFile(paths.markdown, pageMarkdown(p));
  await writeFile(paths.html, await pageHtml(p, new Date()));
  return paths;
}

/** Number formats shared by the experiments' tables. */
export const f = {
  acc: (v: number | undefined): string => (v === undefined ? '—' : v.toFixed(3)),
  loss: (v: number | undefined): string => (v === undefined ? '—' : v.toFixed(3)),
  nats: (v: number | undefined): string => (v === undefined ? '—' : v.toFixed(3)),
  /** Eigenvalues and thresholds: 3 significant digits. */
  sci: (v: number | undefined): string => (v === undefined ? '—' : v >= 1000 || v < 0.01 ? v.toExponential(2) : v.toPrecision(3)),
  lr: (v: number): string => (v >= 0.1 ? String(v) : v.toExponential(0)),
  int: (v: number | undefined): string => (v === undefined ? '—' : String(Math.round(v))),
  pm: (m: number | undefined, s: number | undefined, n: number): string =>
    m === undefined ? '—' : `${m.toFixed(3)} ± ${s === undefined ? '—' : s.toFixed(3)} (n=${n})`,
};
