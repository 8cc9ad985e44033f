// Checks that span keys or need more than a format (ports, sizes in bytes, bounds that must be ordered): an impossible
// value fails at load with its key, instead of hanging a job that waits for what can never happen.
import type { Config } from './schema.js';

/** Throws an Error("key: what, got value") for the first impossible value (loadConfig wraps it as SGT_CONFIG_INVALID). */
export function checkConfig(c: Readonly<Config>): void {
  const bad = (key: string, what: string, got: unknown) => {
    throw new Error(`${key}: ${what}, got ${typeof got === 'string' ? JSON.stringify(got) : String(got)}`);
  };
  const m = /^(.+):(\d+)$/.exec(c.dist.coordinator);
  if (!m) bad('dist.coordinator', 'must be HOST:PORT', c.dist.coordinator);
  const port = Number(m![2]);
  if (port < 1 || port > 65535) bad('dist.coordinator', 'port must be in 1..65535', c.dist.coordinator);
  if (c.dist.ringPortBase > 65535) bad('dist.ringPortBase', 'must be a port in 1..65535', c.dist.ringPortBase);
  if (c.metrics.port > 65535) bad('metrics.port', 'must be a port in 0..65535 (0: ephemeral)', c.metrics.port);
  if (c.dist.maxWorkers > 0 && c.dist.maxWorkers < c.dist.minWorkers) {
    bad('dist.maxWorkers', `must be 0 (no limit) or ≥ dist.minWorkers (${c.dist.minWorkers}): no generation could form`, c.dist.maxWorkers);
  }
  if (c.dist.heartbeatTimeoutMs <= c.dist.heartbeatMs) {
    bad('dist.heartbeatTimeoutMs', `must exceed dist.heartbeatMs (${c.dist.heartbeatMs}), or every peer counts as lost between two heartbeats`, c.dist.heartbeatTimeoutMs);
  }
  if (c.dist.chunkBytes % 4 !== 0) bad('dist.chunkBytes', 'must be a multiple of 4 (the ring sends whole float32 values)', c.dist.chunkBytes);
}
