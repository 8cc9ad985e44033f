// Test harness around the real Prometheus binaries: a throwaway `prometheus` on 127.0.0.1 that scrapes given
// targets (queried over the HTTP API), a stand-in /metrics exporter, and `promtool` runs for config/rule checks.
// Debian package: prometheus. Prometheus 2.42 hands targets to its scrapers in 5 s batches, so the first sample
// is queryable about 5-6 s after start; ready (/-/ready) itself takes ~0.2 s.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const INSTALL_HINT =
  "install the Debian package 'prometheus' (it ships prometheus and promtool): .ci/run does, as root " +
  '(DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus)';

/** One element of an instant-vector (or scalar) query result. value = [unix seconds, value as text]. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PrometheusOptions {
  /** One scrape job per entry; addresses are host:port serving /metrics. */
  targets: Array<{ job: string; addresses: string[] }>;
  /** Scrape (and rule evaluation) interval; default 1 s so tests see data quickly. */
  scrapeIntervalSeconds?: number;
  /** Absolute paths of rule files to load (recording rules, alerts). */
  ruleFiles?: string[];
  /** How long to wait for /-/ready; default 30 s. */
  readyTimeoutMs?: number;
  /** The binary; default $PROMETHEUS_BIN or `prometheus` on PATH. */
  binary?: string;
}

export interface PrometheusHandle {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** Temp directory holding prometheus.yml and the TSDB (removed by stop()). */
  readonly dir: string;
  readonly pid: number;
  /** Instant query via /api/v1/query; rejects on an API error (bad PromQL) with Prometheus' message. */
  query(promql: string): Promise<Sample[]>;
  /** Polls `query(promql)` until pred holds, then returns that result; rejects after timeoutMs with the last result. */
  waitFor(promql: string, pred: (r: Sample[]) => boolean, timeoutMs: number): Promise<Sample[]>;
  /** Prometheus' own log output so far (for failure messages). */
  logs(): string;
  /** Kills Prometheus and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

// Every live instance, so a test process that exits or is signalled (node --test cancelling a file on timeout)
// does not leave a prometheus running or a TSDB behind.
const live = new Set<{ child: ChildProcess; dir: string }>();
let hooksInstalled = false;

function killAllSync(): void {
  for (const p of live) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    rmSync(p.dir, { recursive: true, force: true });
  }
  live.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      killAllSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig); // default action: die by the same signal
    };
    process.on(sig, onSignal);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function duration(seconds: number): string {
  return `${Math.max(1, Math.round(seconds * 1000))}ms`;
}

function configYaml(opts: PrometheusOptions): string {
  const interval = duration(opts.scrapeIntervalSeconds ?? 1);
  // JSON is valid YAML: no quoting questions for job names or addresses.
  return JSON.stringify(
    {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: opts.targets.map((t) => ({ job_name: t.job, static_configs: [{ targets: t.addresses }] })),
    },
    null,
    2,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Prometheus on an ephemeral 127.0.0.1 port with a temp TSDB and resolves once /-/ready answers 200. */
export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusHandle> {
  const binary = opts.binary ?? process.env.PROMETHEUS_BIN ?? 'prometheus';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  let lastError: unknown;
  // The port is free when chosen but could be taken before Prometheus binds it: retry on that race only.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(binary, opts, await freePort(), readyTimeoutMs);
    } catch (e) {
      lastError = e;
      if (!/address already in use/i.test(String((e as Error).message))) throw e;
    }
  }
  throw lastError;
}

async function startOnce(binary: string, opts: PrometheusOptions, port: number, readyTimeoutMs: number): Promise<PrometheusHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'sgt-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, configYaml(opts));
  const url = `http://127.0.0.1:${port}`;

  const child = spawn(
    binary,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1d',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const entry = { child, dir };
  live.add(entry);
  installExitHooks();

  let log = '';
  const onLog = (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout!.on('data', onLog);
  child.stderr!.on('data', onLog);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${code ?? signal}`;
      resolve();
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      exited = e.code === 'ENOENT' ? `'${binary}' not found: ${INSTALL_HINT}` : `could not start '${binary}': ${e.message}`;
      resolve();
    });
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (exited === undefined) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    }
    live.delete(entry);
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready = TSDB opened, config and rules loaded, HTTP API up.
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`prometheus ${exited} before it was ready; log:\n${log.slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`);
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready after ${readyTimeoutMs} ms; log:\n${log.slice(-4000)}`);
    }
    await sleep(50);
  }

  const query = async (promql: string): Promise<Sample[]> => {
    const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`);
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: unknown };
    };
    if (body.status !== 'success' || !body.data) throw new Error(`query ${promql} failed: ${body.error ?? res.status}`);
    const { resultType, result } = body.data;
    if (resultType === 'vector') return result as Sample[];
    if (resultType === 'scalar') return [{ metric: {}, value: result as [number, string] }];
    throw new Error(`query ${promql} gave a ${resultType}; use an instant-vector or scalar expression`);
  };

  const waitFor = async (promql: string, pred: (r: Sample[]) => boolean, timeoutMs: number): Promise<Sample[]> => {
    const until = Date.now() + timeoutMs;
    let last: Sample[] = [];
    for (;;) {
      last = await query(promql);
      if (pred(last)) return last;
      if (Date.now() > until) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting on ${promql}; last result: ${JSON.stringify(last)}; ` +
            `targets: ${await targetHealth(url)}`,
        );
      }
      await sleep(200);
    }
  };

  return { url, dir, pid: child.pid!, query, waitFor, logs: () => log, stop };
}

/** One line per scrape target with its health and last error, for timeout messages. */
async function targetHealth(url: string): Promise<string> {
  try {
    const res = await fetch(`${url}/api/v1/targets`);
    const body = (await res.json()) as { data: { activeTargets: Array<{ scrapeUrl: string; health: string; lastError: string }> } };
    return body.data.activeTargets.map((t) => `${t.scrapeUrl} ${t.health} ${t.lastError}`).join('; ');
  } catch (e) {
    return `unavailable (${(e as Error).message})`;
  }
}

export interface PromtoolResult {
  status: number;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for assertion messages. */
  output: string;
}

/** Runs `promtool <args>` synchronously; throws with INSTALL_HINT when promtool is not installed. */
export function promtool(args: string[], opts: { cwd?: string } = {}): PromtoolResult {
  const bin = process.env.PROMTOOL_BIN ?? 'promtool';
  const r = spawnSync(bin, args, { cwd: opts.cwd, encoding: 'utf8', timeout: 60_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `'${bin}' not found: ${INSTALL_HINT}` : `promtool ${args.join(' ')}: ${r.error.message}`);
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}${r.stderr}` };
}

/**
 * Syntax-checks PromQL expressions with `promtool check rules`, each as a recording rule of a temporary file.
 * Returns promtool's result (status 0 = all parse); its output names the failing rule index and expression.
 */
export function checkPromql(exprs: string[]): PromtoolResult {
  const dir = mkdtempSync(join(tmpdir(), 'sgt-promql-'));
  try {
    const file = join(dir, 'exprs.rules.yml');
    const rules = exprs.map((expr, i) => ({ record: `promql_check:expr_${i}`, expr }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'promql-check', rules }] }, null, 2));
    return promtool(['check', 'rules', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A stand-in exporter: serves body(n) as Prometheus text exposition on /metrics of an ephemeral 127.0.0.1 port,
 * n = 1, 2, ... per scrape (so counters can grow). `address` is what startPrometheus' targets take.
 */
export async function serveExposition(body: (n: number) => string): Promise<{ address: string; close(): Promise<void> }> {
  let n = 0;
  const server = createHttpServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body(++n));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
