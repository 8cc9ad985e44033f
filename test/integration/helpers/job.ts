// Spawns sigmatrain commands as real processes and follows their NDJSON logs, for the runtime's integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../../coordinator/cli/index.js', import.meta.url));
export const TINY = fileURLToPath(new URL('../../../../test/fixtures/configs/tiny.yaml', import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string };

export class Proc {
  readonly lines: LogLine[] = [];
  readonly text: string[] = [];
  readonly exit: Promise<number>;
  private waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcess) {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.text.push(line);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line (tfjs banner, stack trace)
        }
        for (const w of this.waiters) w();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exit = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  }

  /** Resolves with the first line matching, or rejects after timeoutMs (with the log tail). */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs: number, what = 'log line'): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find(pred);
        if (hit) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last output:\n${this.text.slice(-30).join('\n')}`));
      }, timeoutMs);
      this.waiters.push(check);
      check();
    });
  }

  messages(re: RegExp): LogLine[] {
    return this.lines.filter((l) => typeof l.msg === 'string' && re.test(l.msg));
  }
}

/** Every process a test file started: killed when the file's process exits, even after a test timed out. */
const spawned = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export function sigmatrain(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  child.on('exit', () => spawned.delete(child));
  return new Proc(child);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `sgt-${prefix}-`));
}

let nextPort = 31000 + Math.floor(Math.random() * 2000) * 4;
/** A coordinator address on loopback, distinct per call in this process. */
export function coordinatorAddress(): string {
  nextPort += 4;
  return `127.0.0.1:${nextPort}`;
}

/** Kills a process group leader's whole group (workers spawned detached by a launcher are separate). */
export function killTree(pid: number | undefined, sig: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}
