// Assembles report.html: one self-contained page (inline CSS and SVG; no scripts, fonts or network) from the summary
// rows, the rendered charts and the run's events.
import type { Chart, Marker } from './charts.js';
import { MARKER_COLORS } from './charts.js';
import type { RunData } from './load.js';
import type { SummaryRow } from './summary.js';
import { fmt } from './summary.js';

export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0; background: #f6f7f9; }
main { max-width: 980px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 16px; margin: 0 0 2px; }
.dir { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #555; word-break: break-all; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 16px 0; }
.card { background: #fff; border: 1px solid #e3e5e8; border-radius: 6px; padding: 8px 10px; }
.card .label { font-size: 12px; color: #666; }
.card .value { font-size: 20px; font-variant-numeric: tabular-nums; }
.card .note { font-size: 11px; color: #777; }
.card.wide { grid-column: 1 / -1; } .card.wide .value { font-size: 14px; }
.warn { background: #fff7e0; border: 1px solid #f0d58a; border-radius: 6px; padding: 8px 12px; margin: 12px 0; font-size: 13px; }
.legend { font-size: 12px; color: #444; margin: 8px 0 4px; }
.legend span.sw { display: inline-block; width: 14px; height: 0; border-top: 2px dashed; vertical-align: middle; margin: 0 4px 0 12px; }
section.chart { background: #fff; border: 1px solid #e3e5e8; border-radius: 6px; padding: 12px 14px; margin: 12px 0; }
section.chart .caption { font-size: 12px; color: #666; margin: 0 0 6px; }
section.chart svg { max-width: 100%; height: auto; display: block; }
section.chart .empty { color: #888; font-style: italic; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 12px; }
th, td { border: 1px solid #e3e5e8; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.kind { white-space: nowrap; } td.extra { font: 11px ui-monospace, Menlo, Consolas, monospace; color: #555; }
footer { font-size: 11px; color: #888; margin-top: 24px; }
`;

/** Most rows the events table shows; the rest are counted, not printed. */
const MAX_EVENT_ROWS = 1000;

function cards(rows: SummaryRow[]): string {
  return rows
    .map((r) => {
      const wide = r.key === 'when' ? ' wide' : '';
      return `<div class="card${wide}" data-key="${esc(r.key)}"><div class="label">${esc(r.label)}</div><div class="value">${esc(r.value)}</div><div class="note">${esc(r.note)}</div></div>`;
    })
    .join('\n');
}

function legend(markers: Marker[]): string {
  const kinds = (Object.keys(MARKER_COLORS) as (keyof typeof MARKER_COLORS)[]).filter((k) => markers.some((m) => m.kind === k));
  if (!kinds.length) return '';
  const items = kinds.map((k) => `<span class="sw" style="border-color:${MARKER_COLORS[k]}"></span>${esc(k)} (${markers.filter((m) => m.kind === k).length})`);
  return `<div class="legend">Vertical dashed rules on every chart:${items.join('')}</div>`;
}

function chartSection(c: Chart, svg: string | undefined): string {
  const body = svg ?? `<p class="empty">No data: ${esc(c.empty ?? 'nothing to plot')}.</p>`;
  return `<section class="chart" id="chart-${c.id}"><h2>${esc(c.title)}</h2><p class="caption">${esc(c.caption)}</p>\n${body}\n</section>`;
}

function eventsTable(run: RunData): string {
  if (!run.events.length) {
    return `<p class="empty">${run.files.includes('events.jsonl') ? 'events.jsonl holds no events.' : 'No events.jsonl in this run.'}</p>`;
  }
  const shown = run.events.slice(0, MAX_EVENT_ROWS);
  const rows = shown.map((e) => {
    const { time, kind, step, message, ...extra } = e;
    const rest = Object.keys(extra).length ? JSON.stringify(extra) : '';
    const color = kind in MARKER_COLORS ? ` style="color:${MARKER_COLORS[kind as keyof typeof MARKER_COLORS]}"` : '';
    return `<tr><td>${esc(fmt.time(typeof time === 'number' ? time : undefined))}</td><td class="num">${typeof step === 'number' ? step : ''}</td><td class="kind"${color}>${esc(String(kind))}</td><td>${esc(String(message ?? ''))}</td><td class="extra">${esc(rest)}</td></tr>`;
  });
  const more = run.events.length > shown.length ? `<p class="empty">… and ${run.events.length - shown.length} more in events.jsonl.</p>` : '';
  return `<table><thead><tr><th>time (UTC)</th><th>step</th><th>kind</th><th>message</th><th>fields</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>${more}`;
}

export interface PageInput {
  title: string;
  run: RunData;
  rows: SummaryRow[];
  charts: { chart: Chart; svg?: string }[];
  markers: Marker[];
  generatedAt: Date;
}

export function renderPage(p: PageInput): string {
  const warnings: string[] = [];
  if (p.run.skipped.length) {
    const list = p.run.skipped.map((s) => `${s.file}:${s.line} (${s.reason})`).join('; ');
    warnings.push(`Skipped ${p.run.skipped.length} line(s): ${list}.`);
  }
  const missing = ['steps.jsonl', 'diagnostics.jsonl', 'evals.jsonl', 'events.jsonl'].filter((f) => !p.run.files.includes(f));
  if (missing.length) warnings.push(`Not in this run dir: ${missing.join(', ')}.`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(p.title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>${esc(p.title)}</h1>
<div class="dir">${esc(p.run.dir)}</div>
<div class="cards">
${cards(p.rows)}
</div>
${warnings.map((w) => `<div class="warn">${esc(w)}</div>`).join('\n')}
</header>
${legend(p.markers)}
${p.charts.map((c) => chartSection(c.chart, c.svg)).join('\n')}
<section class="chart" id="events"><h2>Events</h2><p class="caption">events.jsonl in file order.</p>
${eventsTable(p.run)}
</section>
<footer>Generated ${esc(fmt.time(p.generatedAt.getTime()))} by sigmatrain report from ${esc(p.run.files.join(', '))}.</footer>
</main>
</body>
</html>
`;
}
