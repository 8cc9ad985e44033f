// One writer for a person's terminal during `run`: every log line — this process's and its workers' — prints as one
// line above the progress bar, which is redrawn below them (cli-progress MultiBar.log, as tqdm.write does).
import { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import { oneLineFormatter } from '../shared/log.js';

export class Terminal {
  private readonly multi: cliProgress.MultiBar;
  private bar: cliProgress.SingleBar | undefined;
  private readonly format = oneLineFormatter();

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.multi = new cliProgress.MultiBar(
      {
        format: 'step {value}/{total} |{bar}| ep {epoch} loss {loss} {metrics} {sps} samples/s min-entropy {ent} nats workers {world}',
        stream: out, hideCursor: true, barsize: 24, clearOnComplete: false, stopOnComplete: false,
        // Log lines are printed over the bar's line and the bar is drawn again below them; cli-progress skips a
        // redraw whose text did not change, which left the bar erased after a log line until the next step, and
        // erased for good when the last log lines came after the last step. Redraw on every refresh.
        forceRedraw: true,
        gracefulExit: false, // SIGINT/SIGTERM stop the job in order (the coordinator's handlers), not the process
      },
      cliProgress.Presets.shades_classic,
    );
  }

  /** A line of output: NDJSON log records become one pretty line; anything else (a stack trace) passes as it is. */
  line(text: string): void {
    if (!text.trim()) return;
    let s = text.endsWith('\n') ? text : `${text}\n`;
    if (text.startsWith('{')) {
      try {
        s = this.format(text);
        if (!s.endsWith('\n')) s += '\n'; // pino-pretty leaves it out when it hides the fields
      } catch {
        // not a log record after all
      }
    }
    if (this.bar) this.multi.log(s);
    else this.out.write(s);
  }

  /** A pino destination that writes through `line`. */
  stream(): Writable {
    let buf = '';
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        buf += chunk.toString();
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        cb();
      },
    });
  }

  /** Shows or moves the bar. */
  progress(value: number, total: number, fields: Record<string, string | number>): void {
    if (!this.bar) this.bar = this.multi.create(total, value, fields);
    else this.bar.update(value, fields);
  }

  /** Final redraw (pending log lines first), then the bar stays as the last line. */
  stop(): void {
    if (!this.bar) return;
    (this.multi as unknown as { update(): void }).update(); // flushes the log lines buffered since the last redraw
    this.multi.stop();
    this.bar = undefined;
  }
}
