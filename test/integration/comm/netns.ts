// Test helper: a throwaway L2 network of Linux network namespaces (one per rank, plus one holding a bridge), with
// 10.x addresses that exist only inside those namespaces. Everything is deleted by destroy(), also on failure.

import { execFileSync } from 'node:child_process';

export interface NetnsLab {
  /** Namespace name per rank. */
  names: string[];
  /** IPv4 address per rank (inside its namespace). */
  addrs: string[];
  destroy(): void;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Bytes sent by `eth0` of namespace `ns` (proof that traffic crossed the veth, not a loopback). */
export function txBytes(ns: string): number {
  const out = execFileSync('ip', ['-n', ns, '-j', '-s', 'link', 'show', 'eth0'], { encoding: 'utf8' });
  return (JSON.parse(out) as { stats64: { tx: { bytes: number } } }[])[0].stats64.tx.bytes;
}

/** Why namespaces cannot be used here, or null when `ip netns add` works (probed with a namespace it deletes again). */
export function netnsUnavailable(): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root: ip netns add needs CAP_SYS_ADMIN';
  const probe = `sgt${process.pid}probe`;
  try {
    ip('netns', 'add', probe);
  } catch (e) {
    return `ip netns add refused: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`;
  }
  try {
    ip('netns', 'del', probe);
  } catch {
    // best effort
  }
  return null;
}

/**
 * Creates namespaces sgt<pid>n<r> (r < count), each with a veth `eth0` at 10.213.<k>.<r+1>/24, whose peers sit in
 * a bridge `br0` inside namespace sgt<pid>b. No interface or address is added to the caller's namespace.
 */
export function createLab(count: number): NetnsLab {
  const tag = `sgt${process.pid}`;
  const bridgeNs = `${tag}b`;
  const names = Array.from({ length: count }, (_, r) => `${tag}n${r}`);
  const subnet = `10.213.${process.pid % 250}`;
  const addrs = names.map((_, r) => `${subnet}.${r + 1}`);
  const created: string[] = [];
  const destroy = () => {
    for (const n of created.splice(0).reverse()) {
      try {
        ip('netns', 'del', n); // removes the veths inside it too
      } catch {
        // already gone
      }
    }
    process.removeListener('exit', destroy);
  };
  process.on('exit', destroy); // a crashed test still cleans up
  try {
    ip('netns', 'add', bridgeNs);
    created.push(bridgeNs);
    ip('-n', bridgeNs, 'link', 'set', 'lo', 'up');
    ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', bridgeNs, 'link', 'set', 'br0', 'up');
    names.forEach((ns, r) => {
      ip('netns', 'add', ns);
      created.push(ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', bridgeNs, 'link', 'add', `p${r}`, 'type', 'veth', 'peer', 'name', `e${r}`);
      ip('-n', bridgeNs, 'link', 'set', `e${r}`, 'netns', ns);
      ip('-n', ns, 'link', 'set', `e${r}`, 'name', 'eth0');
      ip('-n', ns, 'addr', 'add', `${addrs[r]}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', bridgeNs, 'link', 'set', `p${r}`, 'master', 'br0');
      ip('-n', bridgeNs, 'link', 'set', `p${r}`, 'up');
    });
  } catch (e) {
    destroy();
    throw new Error(`building the namespace lab failed: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
  }
  return { names, addrs, destroy };
}
