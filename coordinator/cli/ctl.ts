// `sigmatrain ctl set-temperature TAU`: asks the running job's coordinator to switch the attention temperature at the
// next common step boundary, and prints its answer.
import { SigmaError } from '../../shared/errors.js';
import { load, parseArgs } from './args.js';

/** `sigmatrain ctl set-temperature 0.1 [--coordinator HOST:PORT] [--config F]`. */
export async function ctlCommand(argv: string[]): Promise<number> {
  const [verb, value, ...rest] = argv;
  if (verb !== 'set-temperature' || value === undefined) throw new SigmaError('SGT_CLI_USAGE', 'usage: sigmatrain ctl set-temperature TAU [--coordinator HOST:PORT]');
  const tau = Number(value);
  if (!Number.isFinite(tau) || tau <= 0) throw new SigmaError('SGT_CLI_USAGE', `temperature must be a positive number, got "${value}"`);
  const p = parseArgs(['ctl', ...rest]);
  const config = load(p);
  const { Dealer } = await import('zeromq');
  const { encode, decode } = await import('../../shared/protocol/index.js');
  const d = new Dealer({ receiveTimeout: 10_000, linger: 0 });
  d.connect(`tcp://${config.dist.coordinator}`);
  try {
    await d.send(encode({ type: 'ctl.set-temperature', value: tau }));
    const [frame] = await d.receive();
    const r = decode(frame);
    if (!r.ok) throw new SigmaError('SGT_PROTOCOL', `bad reply from the coordinator: ${r.error}`);
    if (r.msg.type === 'error') throw new SigmaError('SGT_PROTOCOL', `coordinator refused: ${r.msg.message}`);
    if (r.msg.type !== 'ctl.ok') throw new SigmaError('SGT_PROTOCOL', `unexpected reply ${r.msg.type}`);
    console.log(r.msg.message);
    return 0;
  } catch (e) {
    if ((e as { code?: string }).code === 'EAGAIN') throw new SigmaError('SGT_PROTOCOL', `no answer from a coordinator at ${config.dist.coordinator} within 10 s: is the job running (--coordinator HOST:PORT)?`);
    throw e;
  } finally {
    d.close();
  }
}
