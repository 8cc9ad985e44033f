// pino logger factory: NDJSON on stdout for machines, pino-pretty only when a person watches a terminal.
import pino, { type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  level?: string;
  role: 'cli' | 'coordinator' | 'worker' | 'launcher';
  /** Force pretty or NDJSON; default: pretty iff stdout is a TTY. */
  pretty?: boolean;
  /** Where NDJSON goes (default stdout); tests pass a stream. */
  destination?: pino.DestinationStream;
}

/** Pretty, one line per record: time, level, `workerId: ` when there is one, the message, other fields inline. */
const ONE_LINE = {
  colorize: true, singleLine: true, translateTime: 'HH:MM:ss', ignore: 'pid,hostname,role,workerId',
  messageFormat: '{if workerId}{workerId}: {end}{msg}',
  // pino-pretty prints err/error on lines of their own even with singleLine; inline them like any field.
  errorLikeObjectKeys: [] as string[],
};

/**
 * NDJSON record → one pretty line (with its newline), for a terminal (coordinator/terminal.ts): the message alone up
 * to info (messages are written to stand alone; the fields are in the NDJSON off a terminal), fields inline from warn.
 */
export function oneLineFormatter(): (ndjson: string) => string {
  const short = prettyFactory({ ...ONE_LINE, hideObject: true });
  const full = prettyFactory(ONE_LINE);
  return (ndjson) => {
    const level = /"level":(\d+)/.exec(ndjson);
    return (level && Number(level[1]) >= 40 ? full : short)(ndjson);
  };
}

export function createLogger(o: LogOptions): Logger {
  const pretty = o.pretty ?? Boolean(process.stdout.isTTY);
  const base = { role: o.role };
  if (pretty && !o.destination) {
    return pino({
      level: o.level ?? 'info',
      base,
      transport: { target: 'pino-pretty', options: ONE_LINE },
    });
  }
  return pino({ level: o.level ?? 'info', base }, o.destination ?? pino.destination({ dest: 1, sync: true }));
}
