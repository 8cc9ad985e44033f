// `sigmatrain vocab --config F` (learn or reuse a WMT run's joint vocabulary; print its path and hash) and
// `sigmatrain translate --run-dir D` (the run's latest checkpoint, config and vocabulary; stdin sentences → stdout
// translations, beam from the config). The coordinator role stays free of tfjs: worker code is imported in here.
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { loadConfig, type Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';

export const TRANSLATE_USAGE = `usage: sigmatrain translate --run-dir DIR [--vocab PATH] [--beam N] < SOURCE > TRANSLATIONS
       sigmatrain vocab --config FILE [--<config.key> value ...] [--force]

translate: loads DIR's latest checkpoint with the config and vocabulary it was trained with (the vocabulary is found
from the checkpoint's config, or given with --vocab; its sha256 must match the checkpoint's), reads one source
sentence per line on stdin and writes one translation per line on stdout (decode.beam, decode.lenpen from the config).
vocab: learns the joint BPE vocabulary of the config's data (data.root, data.wmt.*) or reuses the one learned before
from the same files and options; prints its path and sha256.`;

function flagValues(argv: string[], names: string[]): { flags: Map<string, string>; rest: string[] } {
  const flags = new Map<string, string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') ? a.slice(2, eq > 0 ? eq : undefined) : '';
    if (names.includes(name)) {
      const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new SigmaError('SGT_CLI_USAGE', `--${name} needs a value\n${TRANSLATE_USAGE}`);
      flags.set(name, v);
    } else rest.push(a);
  }
  return { flags, rest };
}

export async function vocabCommand(argv: string[], stdout: Writable, stderr: Writable): Promise<number> {
  const force = argv.includes('--force');
  const { flags, rest } = flagValues(argv.filter((a) => a !== '--force'), ['config']);
  const config = loadConfig({ ...(flags.has('config') ? { file: flags.get('config')! } : {}), args: rest });
  if (config.task !== 'translate') throw new SigmaError('SGT_CLI_USAGE', `sigmatrain vocab needs a translate config (task: ${config.task})`);
  const { wmtOptions } = await import('../../worker/tasks/translate.js');
  const { trainVocabulary } = await import('../../worker/data/wmt/vocab_cli.js');
  const v = await trainVocabulary({ ...wmtOptions(config, (m) => stderr.write(`${m}\n`)), force });
  stdout.write(`${v.path}\n${v.hash}\n`);
  return 0;
}

export async function translateCommand(argv: string[], stdin: Readable, stdout: Writable, stderr: Writable): Promise<number> {
  const { flags, rest } = flagValues(argv, ['run-dir', 'vocab', 'beam']);
  if (rest.length) throw new SigmaError('SGT_CLI_USAGE', `unknown argument ${rest[0]}\n${TRANSLATE_USAGE}`);
  const runDir = flags.get('run-dir');
  if (!runDir) throw new SigmaError('SGT_CLI_USAGE', `--run-dir is required\n${TRANSLATE_USAGE}`);
  const { latestCheckpoint, readCheckpoint } = await import('../../shared/checkpoint/store.js');
  const path = await latestCheckpoint(join(runDir, 'checkpoints'));
  if (!path) throw new SigmaError('SGT_CHECKPOINT_INVALID', `${join(runDir, 'checkpoints')} holds no complete checkpoint: train the run first`);
  const ckpt = await readCheckpoint(path);
  const saved = ckpt.state['config'] as Config | undefined;
  if (!saved || saved.task !== 'translate') throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} is not a translate run's (task ${saved?.task})`);
  const beam = flags.has('beam') ? Number(flags.get('beam')) : saved.decode.beam;
  if (!Number.isInteger(beam) || beam < 1) throw new SigmaError('SGT_CLI_USAGE', `--beam ${flags.get('beam')} must be a positive integer`);
  const config = loadConfig({ overrides: { ...saved, decode: { ...saved.decode, beam } } as unknown as Record<string, unknown> });
  const arch = ckpt.state['architecture'] as Record<string, unknown>;

  const [{ initBackend }, tf, { loadVocab }, { TranslateTask, wmtOptions }, { trainVocabulary }] = await Promise.all([
    import('../../worker/backend.js'), import('@tensorflow/tfjs'), import('../../worker/data/wmt/vocab.js'),
    import('../../worker/tasks/translate.js'), import('../../worker/data/wmt/vocab_cli.js'),
  ]);
  await initBackend(config.backend);
  const vocabPath = flags.get('vocab') ?? (await trainVocabulary({ ...wmtOptions(config, () => {}) })).path;
  const vocab = await loadVocab(vocabPath);
  if (vocab.hash !== arch['vocabHash']) {
    throw new SigmaError('SGT_VOCAB', `vocabulary ${vocab.path} (sha256 ${vocab.hash.slice(0, 12)}) is not the one checkpoint ${path} was trained with (${String(arch['vocabHash']).slice(0, 12)}): pass that one with --vocab`);
  }
  const task = new TranslateTask(config);
  task.useVocab(vocab);
  const model = task.model;
  const params = new Map<string, import('@tensorflow/tfjs').Tensor>();
  const buffers = new Map<string, import('@tensorflow/tfjs').Tensor>();
  for (const s of model.params) {
    const a = ckpt.model.get(s.name);
    if (!a) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} lacks parameter ${s.name}`);
    params.set(s.name, tf.tensor(a.data, s.shape));
  }
  for (const s of model.buffers) {
    const a = ckpt.model.get(s.name);
    if (!a) throw new SigmaError('SGT_CHECKPOINT_INVALID', `checkpoint ${path} lacks buffer ${s.name}`);
    buffers.set(s.name, tf.tensor(a.data, s.shape));
  }
  stderr.write(`translating with ${path} (step ${ckpt.state.step}), vocabulary ${vocab.path}, beam ${beam}\n`);
  const maxPos = config.model.seq2seq.maxPositions;
  const m = { model, params, buffers, temperature: 1 };
  const lines: string[] = [];
  const flush = async () => {
    if (!lines.length) return;
    const ids = await vocab.encodeBatch(lines);
    const lens = Int32Array.from(ids, (x) => Math.min(x.length + 1, maxPos));
    const S = Math.max(...lens);
    const src = new Int32Array(ids.length * S).fill(1);
    ids.forEach((x, i) => {
      src.set(x.subarray(0, lens[i]! - 1), i * S);
      src[i * S + lens[i]! - 1] = 2;
    });
    const t = tf.tensor2d(src, [ids.length, S], 'int32');
    const out = await task.translateIds(m, t, lens);
    t.dispose();
    for (const h of out) stdout.write(`${await vocab.decode(h)}\n`);
    lines.length = 0;
  };
  for await (const line of createInterface({ input: stdin, crlfDelay: Infinity })) {
    lines.push(line);
    if (lines.length >= 32) await flush();
  }
  await flush();
  return 0;
}
