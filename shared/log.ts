// pino logger factory: NDJSON on stdout for machines, pino-pretty only when a person watches a terminal.
import pino, { type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: string;
  role: 'cli' | 'coordinator' | 'worker' | 'launcher';
  /** Force pretty or NDJSON; default: pretty iff stdout is a TTY. */
  pretty?: boolean;
  /** Where NDJSON goes (default stdout); tests pass a stream. */
  destination?: pino.DestinationStream;
}

export function createLogger(o: LogOptions): Logger {
  const pretty = o.pretty ?? Boolean(process.stdout.isTTY);
  const base = { role: o.role };
  if (pretty && !o.destination) {
    return pino({
      level: o.level ?? 'info',
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname,role', translateTime: 'HH:MM:ss' } },
    });
  }
  return pino({ level: o.level ?? 'info', base }, o.destination ?? pino.destination({ dest: 1, sync: true }));
}
