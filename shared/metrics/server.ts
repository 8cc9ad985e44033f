// The /metrics endpoint of one process (plain node:http): GET /metrics → the registry's text exposition,
// GET /healthz → 200, anything else 404 (405 for a non-GET on those two). Each process serves its own port.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { SigmaError } from '../errors.js';

export interface ServeOptions {
  /** Interface to bind; default 0.0.0.0 (Prometheus scrapes from outside the pod). */
  host?: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
}

export interface MetricsServer {
  /** http://host:port/metrics, with a wildcard host replaced by loopback so it can be fetched locally. */
  url: string;
  port: number;
  /** Stops listening and drops open (keep-alive) connections; idempotent. */
  close(): Promise<void>;
}

export async function serveMetrics(registry: Registry, opts: ServeOptions): Promise<MetricsServer> {
  const host = opts.host ?? '0.0.0.0';
  const { port } = opts;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SigmaError('SGT_METRICS',
      `metrics port ${String(port)} is not a TCP port (0-65535); check config key metrics.port (the base port) and the number of processes on this machine`);
  }

  const server = createServer((req, res) => { void handle(registry, req, res); });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => { server.off('listening', onListening); reject(listenError(err, host, port)); };
    const onListening = (): void => { server.off('error', onError); resolve(); };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host, port });
  });
  // After a successful listen an 'error' would otherwise be an uncaught exception; a metrics endpoint must not
  // take the process down with it.
  server.on('error', () => {});

  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(host)}:${bound}/metrics`,
    port: bound,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const method = req.method ?? 'GET';
  if (path !== '/metrics' && path !== '/healthz') return reply(res, 404, 'not found: try /metrics or /healthz\n');
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return reply(res, 405, `method ${method} not allowed on ${path}\n`);
  }
  if (path === '/healthz') return reply(res, 200, 'ok\n');
  try {
    const body = await registry.metrics();
    res.writeHead(200, { 'Content-Type': registry.contentType });
    res.end(method === 'HEAD' ? undefined : body);
  } catch (err) {
    reply(res, 500, `collecting metrics failed: ${(err as Error).message}\n`);
  }
}

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text);
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): SigmaError {
  const where = `${host}:${port}`;
  const key = 'config key metrics.port (env SIGMATRAIN_METRICS_PORT: the base port; each process of a machine serves on its own offset from it)';
  switch (err.code) {
    case 'EADDRINUSE':
      return new SigmaError('SGT_METRICS',
        `cannot serve /metrics on ${where}: port ${port} is already in use. It comes from ${key}; ` +
        `pick a base port with a free port for every process of this machine above it, or stop the process holding ` +
        `port ${port} (find it with: ss -ltnp 'sport = :${port}')`, { cause: err });
    case 'EACCES':
      return new SigmaError('SGT_METRICS',
        `cannot serve /metrics on ${where}: permission denied (ports below 1024 need privileges). Set ${key} to 1024 or above`,
        { cause: err });
    default:
      return new SigmaError('SGT_METRICS',
        `cannot serve /metrics on ${where}: ${err.message}. Check config key metrics.host (an address of this machine) and ${key}`, { cause: err });
  }
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
