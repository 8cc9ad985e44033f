// `sigmatrain transcribe --run-dir D [--beam N [--lm]] file.flac …`: transcripts of 16 kHz mono FLAC files by the
// latest checkpoint of an asr run, one line per file in argument order (greedy CTC, or prefix beam search with --beam,
// fused with the run's character LM with --lm).
import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';

export const TRANSCRIBE_USAGE = `usage: sigmatrain transcribe --run-dir DIR [--beam N [--lm] [--lm-order K] [--lm-weight W] [--lm-bonus B]] FILE.flac [FILE2.flac ...]

Transcribes each FLAC file (16 kHz mono 16-bit, as LibriSpeech) with the newest checkpoint under DIR/checkpoints of
an asr run: standard output gets one transcript per file, lower case, in argument order.

options:
  --run-dir DIR   the run whose checkpoint to use
  --beam N        lexicon-free CTC prefix beam search of width N (default: greedy)
  --lm            fuse the beam search with the run's character LM (data.librispeech.lm), counted again from its
                  training subsets' transcripts and lm.texts (the corpus must be where the run read it)
  --lm-order K, --lm-weight W, --lm-bonus B
                  that LM with another order, weight or per-letter bonus (each implies --lm)`;

export interface TranscribeOptions {
  runDir: string;
  beam: number;
  /** Fuse the run's LM, with these overrides of data.librispeech.lm; null: no LM. */
  lm: { order?: number; weight?: number; bonus?: number } | null;
  files: string[];
}

export function parseTranscribeArgs(argv: string[]): TranscribeOptions {
  let runDir = '';
  let beam = 0;
  let lm: TranscribeOptions['lm'] = null;
  const files: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--run-dir') runDir = argv[++i] ?? '';
    else if (a === '--beam') {
      beam = Number(argv[++i]);
      if (!Number.isInteger(beam) || beam < 1) throw new SigmaError('SGT_CLI_USAGE', `transcribe: --beam ${argv[i]} must be an integer ≥ 1\n${TRANSCRIBE_USAGE}`);
    } else if (a === '--lm') lm ??= {};
    else if (a === '--lm-order' || a === '--lm-weight' || a === '--lm-bonus') {
      const v = Number(argv[++i]);
      const ok = a === '--lm-order' ? Number.isInteger(v) && v >= 1 && v <= 20 : Number.isFinite(v) && v >= 0;
      if (!ok) throw new SigmaError('SGT_CLI_USAGE', `transcribe: ${a} ${argv[i]} must be ${a === '--lm-order' ? 'an integer in [1, 20]' : 'a number ≥ 0'}\n${TRANSCRIBE_USAGE}`);
      lm = { ...(lm ?? {}), [a.slice(5)]: v };
    } else if (a.startsWith('-')) throw new SigmaError('SGT_CLI_USAGE', `transcribe: unknown option ${a}\n${TRANSCRIBE_USAGE}`);
    else files.push(a);
  }
  if (!runDir) throw new SigmaError('SGT_CLI_USAGE', `transcribe: --run-dir DIR is required\n${TRANSCRIBE_USAGE}`);
  if (files.length === 0) throw new SigmaError('SGT_CLI_USAGE', `transcribe: name at least one FLAC file\n${TRANSCRIBE_USAGE}`);
  if (lm && beam === 0) throw new SigmaError('SGT_CLI_USAGE', `transcribe: the LM is fused into the beam search: add --beam N\n${TRANSCRIBE_USAGE}`);
  return { runDir: resolve(runDir), beam, lm, files };
}

export async function transcribeCommand(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const o = parseTranscribeArgs(argv);
  const { latestCheckpoint, readCheckpoint } = await import('../../shared/checkpoint/store.js');
  const dir = resolve(o.runDir, 'checkpoints');
  const path = await latestCheckpoint(dir);
  if (!path) throw new SigmaError('SGT_CHECKPOINT_INVALID', `transcribe: no checkpoint in ${dir}; train an asr run with --run-dir ${o.runDir} first`);
  const ckpt = await readCheckpoint(path);
  const config = ckpt.state.config as Config;
  if (config?.task !== 'asr') throw new SigmaError('SGT_CHECKPOINT_INVALID', `transcribe: checkpoint ${path} is of task ${String(config?.task)}, not asr`);

  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../../worker/backend.js');
  const { buildModel } = await import('../../worker/models/index.js');
  const { FlacReader, formatMismatch } = await import('../../worker/data/audio/flac.js');
  const { computeFeatures } = await import('../../worker/data/audio/features.js');
  const { decodeBatch, tokensToText, LETTER_TOKENS } = await import('../../worker/decode/ctc.js');
  await initBackend(config.backend);
  const bins = config.data.librispeech.features.bins;
  const model = buildModel(config, { vocab: LETTER_TOKENS.length, features: bins });
  const saved = JSON.stringify(ckpt.state.architecture);
  if (saved !== JSON.stringify(model.architecture())) {
    throw new SigmaError('SGT_CHECKPOINT_INVALID', `transcribe: checkpoint ${path} holds architecture ${saved}, which its own config does not rebuild (${JSON.stringify(model.architecture())})`);
  }
  const tensor = (name: string) => {
    const a = ckpt.model.get(name);
    if (!a) throw new SigmaError('SGT_CHECKPOINT_INVALID', `transcribe: checkpoint ${path} lacks tensor ${name}`);
    return tf.tensor(a.data, a.shape);
  };
  const params = new Map(model.params.map((p) => [p.name, tensor(p.name)]));
  const buffers = new Map(model.buffers.map((b) => [b.name, tensor(b.name)]));
  let lm: import('../../worker/decode/ctc.js').LmFusion | null = null;
  if (o.lm) {
    const l = config.data.librispeech;
    const order = o.lm.order ?? l.lm.order;
    if (order === 0) throw new SigmaError('SGT_CLI_USAGE', `transcribe: run ${o.runDir} trained without an LM (data.librispeech.lm.order 0): pass --lm-order K (e.g. 6)`);
    const { buildLibriIndex, DEFAULT_CACHE_DIR } = await import('../../worker/data/librispeech/index.js');
    const { lmTranscripts, speechLm } = await import('../../worker/tasks/asr.js');
    const index = await buildLibriIndex({ root: config.data.root, subsets: l.train, threads: l.indexThreads, cacheDir: l.cacheDir === '' ? DEFAULT_CACHE_DIR : l.cacheDir });
    const usable = lmTranscripts(index.subsets.flatMap((s) => s.utterances));
    lm = await speechLm({ ...l, lm: { ...l.lm, order, weight: o.lm.weight ?? l.lm.weight, bonus: o.lm.bonus ?? l.lm.bonus } }, usable);
    err.write(`transcribe: character LM of order ${order} from ${usable.length} transcripts of ${l.train.join(',')}${l.lm.texts ? ` and ${l.lm.texts}` : ''}, weight ${lm!.weight}, bonus ${lm!.bonus}\n`);
  }
  err.write(`transcribe: ${path} (step ${String(ckpt.state.step)}), ${o.beam > 0 ? `beam ${o.beam}${lm ? ' with the LM' : ''}` : 'greedy'}\n`);
  const reader = new FlacReader();
  for (const file of o.files) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (e) {
      throw new SigmaError('SGT_DATA_INVALID', `transcribe: cannot read ${file}: ${(e as Error).message}`);
    }
    const audio = await reader.decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).catch((e: Error) => {
      throw new SigmaError('SGT_DATA_INVALID', `transcribe: ${file} is not a readable FLAC file: ${e.message}`);
    });
    const bad = formatMismatch(audio.info);
    if (bad) throw new SigmaError('SGT_DATA_INVALID', `transcribe: ${file}: ${bad} (convert it: sox IN -r 16000 -c 1 -b 16 OUT.flac)`);
    const f = computeFeatures(audio.samples, { kind: config.data.librispeech.features.kind, bins });
    if (f.frames === 0) throw new SigmaError('SGT_DATA_INVALID', `transcribe: ${file} is shorter than one 25 ms window`);
    const logits = tf.tidy(() => model.forward(params, buffers, { features: tf.tensor3d(f.data, [1, f.frames, bins]), lengths: tf.tensor1d([f.frames], 'int32') },
      { training: false, temperature: config.model.temperature, dropout: 0, attnDropout: 0, seed: 0 }).outputs.logits!);
    const scores = (await logits.data()) as Float32Array;
    const [, Tp, C] = logits.shape as [number, number, number];
    logits.dispose();
    const tokens = decodeBatch(scores, [1, Tp, C], [Tp], o.beam > 0 ? { method: 'beam', beamWidth: o.beam, lm: lm ?? undefined } : { method: 'greedy' })[0]!;
    out.write(`${tokensToText(tokens)}\n`);
  }
  tf.dispose([...params.values(), ...buffers.values()]);
  return 0;
}
