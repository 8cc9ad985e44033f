// The one convict schema of sigmatrain, assembled from per-family fragments: keys every family shares stay under
// model.* and data.*, a family's own under model.<family>.* (families/) and a dataset's under data.<kind>.* (datasets/).
// The Config type is derived from this literal (fragment.ts), so a key exists in the type iff it exists here.
import { TASK_NAMES } from '../tasks.js';
import { withFamilies, type ConfigOf } from './fragment.js';
import { vit } from './families/vit.js';
import { encoder } from './families/encoder.js';
import { lm } from './families/lm.js';
import { seq2seq } from './families/seq2seq.js';
import { speech } from './families/speech.js';
import { shapes } from './datasets/shapes.js';
import { imagefolder } from './datasets/imagefolder.js';
import { imagenet } from './datasets/imagenet.js';
import { reverse } from './datasets/reverse.js';
import { wikitext } from './datasets/wikitext.js';
import { wmt } from './datasets/wmt.js';
import { librispeech } from './datasets/librispeech.js';

/** One fragment per model family (worker/models/<family>.ts), under model.<family>; model.family picks the family. */
export const MODEL_FAMILIES = { vit, encoder, lm, seq2seq, speech } as const;

/** The values of data.kind; each has its fragment under data.<kind>. */
export const DATA_KINDS = ['shapes', 'imagefolder', 'imagenet', 'wikitext', 'wmt', 'librispeech'] as const;

/** One fragment per data kind, plus the reverse task's generated sequences (data.reverse: that task reads no kind). */
export const DATA_FRAGMENTS = { shapes, imagefolder, imagenet, wikitext, wmt, librispeech, reverse } as const;

/** The names of a family table, typed as the union of its keys (the format of model.family). */
function familyNames<T extends object>(families: T): (keyof T & string)[] {
  return Object.keys(families) as (keyof T & string)[];
}

export const schema = {
  task: {
    doc: 'What the job is (worker/tasks/): classify (images: model.family vit, data.kind shapes, imagefolder or imagenet), reverse (toy sequence reversal, the proof of the Task seam: model.family encoder), lm (language modelling on WikiText-103: model.family lm, data.kind wikitext), translate (model.family seq2seq, data.kind wmt) or asr (model.family speech, data.kind librispeech).',
    format: [...TASK_NAMES],
    default: 'classify',
  },
  seed: { doc: 'Seed of every random choice (init, data order, dropout); derived per rank and step.', format: 'count', default: 0 },
  backend: {
    doc: 'tfjs backend: auto (tensorflow > webgpu on a hardware GPU adapter > wasm > cpu), tensorflow (tfjs-node[-gpu], if installed), webgpu (Dawn: optional npm packages webgpu + @tensorflow/tfjs-backend-webgpu, a GPU with a Vulkan driver), wasm, cpu.',
    format: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'],
    default: 'auto',
  },
  model: withFamilies('model', {
    family: {
      doc: 'Model family (one file per family in worker/models, its keys under model.<family>): vit (images), encoder (token sequences), lm (decoder-only causal language model), seq2seq (encoder-decoder translation) or speech (CTC acoustic model). The task decides which fits.',
      format: familyNames(MODEL_FAMILIES),
      default: 'vit',
    },
    reparam: {
      doc: 'sigma: σReparam on every linear (Ŵ = γ/σ(W)·W); stats: track σ without reparametrising; none: plain linear.',
      format: ['sigma', 'stats', 'none'],
      default: 'sigma',
    },
    gammaInit: { doc: 'γ init: one (the paper) or spectral (σ(W₀), the reference code).', format: ['one', 'spectral'], default: 'one' },
    powerIterations: { doc: 'Power-iteration steps per training forward.', format: 'positive-int', default: 1 },
    qkv: { doc: 'σReparam of Q/K/V jointly (one fused linear) or separately.', format: ['joint', 'separate'], default: 'joint' },
    norm: { doc: 'Normalisation: pre, post, none or deepnorm.', format: ['pre', 'post', 'none', 'deepnorm'], default: 'none' },
    initStd: { doc: 'Std of the truncated-normal init of linear weights.', format: 'positive', default: 0.02 },
    dropout: { doc: 'Dropout rate after attention projection and MLP.', format: 'probability', default: 0 },
    attnDropout: { doc: 'Dropout rate on attention probabilities.', format: 'probability', default: 0 },
    temperature: { doc: 'Global attention temperature τ (logits / τ).', format: 'positive', default: 1 },
    temperatureSchedule: {
      doc: 'τ changes during training: a list of {fromEpoch | fromStep, value}, e.g. [{fromEpoch: 5, value: 0.1}] (the paper\'s Appendix B intervention); the last entry that has started wins.',
      format: 'temperature-schedule',
      default: [],
    },
  }, MODEL_FAMILIES),
  data: withFamilies('data', {
    kind: {
      doc: 'The dataset (its keys under data.<kind>): shapes: a generated ImageFolder of PNG shapes under data.root; imagefolder: an existing small train/ val/ tree decoded once into memory; imagenet: train/<wnid>/*.JPEG + val (folders or LOC_val_solution.csv) streamed through decode threads with the DeiT augmentations; wikitext: WikiText-103 (task lm) under data.root; wmt: WMT parallel text (task translate) under data.root; librispeech: the LibriSpeech tree (task asr) under data.root. Task reverse generates its sequences (data.reverse) and reads no kind.',
      format: [...DATA_KINDS],
      default: 'shapes',
    },
    root: { doc: 'Dataset root directory (holds train/ and val/).', format: 'string', default: 'data/shapes16' },
  }, DATA_FRAGMENTS),
  train: {
    epochs: { doc: 'Epochs to train.', format: 'positive-int', default: 10 },
    maxSteps: { doc: 'Stop after this many optimizer steps (0: no limit).', format: 'count', default: 0 },
    globalBatch: { doc: 'Samples per optimizer step across all workers (split evenly; the per-worker batch is derived).', format: 'positive-int', default: 64 },
    microBatch: { doc: 'Largest forward/backward a worker runs at once; a larger per-worker batch is accumulated in micro-batches (0: no limit).', format: 'count', default: 0 },
    labelSmoothing: { doc: 'Label smoothing ε of the cross-entropy.', format: 'probability', default: 0 },
    evalEveryEpochs: { doc: 'Validate every this many epochs (and at the end).', format: 'positive-int', default: 1 },
    logEverySteps: { doc: 'Print a progress line every this many steps.', format: 'positive-int', default: 10 },
    maxSeconds: { doc: 'Frame-unit tasks (asr): seconds of audio per worker per step, padded (paper 240); 0: use maxFrames.', format: 'non-negative', default: 0 },
    maxFrames: { doc: 'Frame-unit tasks (asr): feature frames (10 ms) per worker per step, padded, when maxSeconds is 0.', format: 'count', default: 24000 },
    budgetWorkers: { doc: 'Frame-unit tasks (asr): workers the per-worker budget is planned for; a step holds budgetWorkers × the budget of audio for any number of workers (elastic runs keep their steps).', format: 'positive-int', default: 1 },
    maxTokens: { doc: 'Token tasks (translate): padded tokens per worker per step, max(src, tgt) with </s> (fairseq --max-tokens); replaces globalBatch.', format: 'positive-int', default: 4096 },
  },
  decode: {
    beam: { doc: 'translate: beam size of evaluation and `sigmatrain translate` (1 = greedy).', format: 'positive-int', default: 4 },
    lenpen: { doc: 'translate: length penalty α (fairseq --lenpen: score / length^α).', format: 'non-negative', default: 0.6 },
    maxLenA: { doc: 'translate: longest output = maxLenA · source length + maxLenB (fairseq --max-len-a/-b).', format: 'non-negative', default: 1.2 },
    maxLenB: { doc: 'translate: see maxLenA.', format: 'count', default: 10 },
  },
  optim: {
    name: { doc: 'Optimizer: sgd (momentum, Nesterov), adamw, lars (the paper\'s ViT recipe), lamb, adagrad.', format: ['sgd', 'adamw', 'lars', 'lamb', 'adagrad'], default: 'adamw' },
    lr: { doc: 'Peak learning rate.', format: 'positive', default: 1e-3 },
    momentum: { doc: 'Heavy-ball momentum (sgd, lars).', format: 'probability', default: 0.9 },
    nesterov: { doc: 'Nesterov momentum (sgd, lars).', format: 'bool', default: false },
    beta1: { doc: 'Adam β₁ (adamw, lamb).', format: 'probability', default: 0.9 },
    beta2: { doc: 'Adam β₂ (adamw, lamb).', format: 'probability', default: 0.999 },
    eps: { doc: 'ε of adamw / lamb / adagrad / lars.', format: 'positive', default: 1e-8 },
    weightDecay: { doc: 'Weight decay (decoupled for adamw/lamb, L2 for sgd/lars/adagrad), on weights only.', format: 'non-negative', default: 0 },
    trustCoefficient: { doc: 'LARS trust coefficient η in η‖w‖/(‖g‖ + wd‖w‖).', format: 'positive', default: 0.001 },
    initialAccumulator: { doc: 'Adagrad initial accumulator.', format: 'non-negative', default: 0 },
    excludeFromAdaptation: { doc: 'Parameter kinds without LARS/LAMB trust ratio and weight decay.', format: 'param-kinds', default: ['bias', 'gamma', 'norm'] },
    warmupSteps: { doc: 'Linear warmup steps (0: none).', format: 'count', default: 0 },
    warmupInit: { doc: 'Learning rate the warmup starts from.', format: 'non-negative', default: 0 },
    schedule: { doc: 'After warmup: constant, cosine (to lr·minLrRatio), step (× factor at each milestone), inverse-sqrt, or plateau (× optim.plateau.factor when the headline evaluation metric has not improved for optim.plateau.patience evaluations).', format: ['constant', 'cosine', 'step', 'inverse-sqrt', 'plateau'], default: 'constant' },
    plateau: {
      patience: { doc: 'plateau: evaluations without improvement before the lr is reduced.', format: 'positive-int', default: 1 },
      factor: { doc: 'plateau: lr multiplier per reduction (0.5 halves, the paper\'s speech recipe).', format: 'probability', default: 0.5 },
      threshold: { doc: 'plateau: relative improvement an evaluation must beat the best by.', format: 'non-negative', default: 0 },
    },
    minLrRatio: { doc: 'Cosine floor as a fraction of lr.', format: 'non-negative', default: 0 },
    milestones: { doc: 'Step schedule milestones (in milestoneUnit), e.g. [210] for the paper\'s step(210, 0.1).', format: 'int-list', default: [] },
    milestoneUnit: { doc: 'Unit of milestones.', format: ['steps', 'epochs'], default: 'epochs' },
    factor: { doc: 'Step schedule factor.', format: 'positive', default: 0.1 },
    timescale: { doc: 'Inverse-sqrt timescale in steps.', format: 'positive', default: 10000 },
    clipGradNorm: { doc: 'Clip the global gradient norm to this (0: off).', format: 'non-negative', default: 0 },
    gammaLrScale: { doc: 'Learning-rate multiplier of the σReparam γ scalars (their own parameter group).', format: 'positive', default: 1 },
    emaDecay: { doc: 'EMA of weights with this decay, evaluated beside the raw weights (0: off).', format: 'probability', default: 0 },
  },
  dist: {
    coordinator: {
      doc: 'Coordinator address HOST:PORT (workers connect, the coordinator binds). MASTER_ADDR/MASTER_PORT are accepted as aliases.',
      format: 'string',
      default: '127.0.0.1:29400',
    },
    minWorkers: { doc: 'Fewest workers a generation may run with (after failures).', format: 'positive-int', default: 1 },
    maxWorkers: { doc: 'Most workers admitted to a generation (0: no limit).', format: 'count', default: 0 },
    joinWaitMs: {
      doc: 'How long the coordinator waits for the expected workers before starting with at least minWorkers (it starts at once when all have joined). Workers build their model and index their data before joining: minutes for ViT-L on ImageNet.',
      format: 'count',
      default: 600000,
    },
    heartbeatMs: { doc: 'Heartbeat interval, both ways.', format: 'positive-int', default: 1000 },
    heartbeatTimeoutMs: { doc: 'A peer silent this long is lost.', format: 'positive-int', default: 5000 },
    busyTimeoutMs: {
      doc: 'A worker keeps proving it is alive from a separate thread while a long step, HVP or evaluation holds its training thread; once that thread has been busy this long it is treated as hung (lost after heartbeatTimeoutMs).',
      format: 'positive-int',
      default: 1800000,
    },
    allreduceTimeoutMs: {
      doc: 'An all-reduce waiting this long on a peer fails (and triggers recovery). A dead peer is found sooner by heartbeats; this catches a ring that stalls between live processes (a partition), and must outlast stragglers (a slow data read on one rank).',
      format: 'positive-int',
      default: 300000,
    },
    chunkBytes: { doc: 'Ring all-reduce message size in bytes (pipelining granularity).', format: 'positive-int', default: 1048576 },
    dataPlane: {
      doc: 'What carries the ring\'s bulk data. net: one node:net connection per ring edge (a unix socket for ipc, TCP for tcp), frames read from one reused buffer straight into the gradient buffer, a dead neighbour detected as soon as its connection closes. zmq: ZeroMQ PUSH/PULL (a buffer per received message; a dead neighbour found by dist.allreduceTimeoutMs). Same schedule and bitwise-identical results; the coordinator control plane is ZeroMQ either way. All workers of a job must use the same plane.',
      format: ['net', 'zmq'],
      default: 'net',
    },
    transport: { doc: 'Ring transport: ipc (one machine), tcp, or auto (ipc when the coordinator is on loopback, tcp otherwise).', format: ['auto', 'ipc', 'tcp'], default: 'auto' },
    ringHost: { doc: 'Address other workers reach this worker\'s ring socket at (tcp).', format: 'string', default: '127.0.0.1' },
    ringPortBase: { doc: 'tcp ring port of local rank 0 (local rank r uses base + r).', format: 'positive-int', default: 29500 },
    consistencyEverySteps: { doc: 'Check every this many steps (and at the end) that all replicas hold bitwise-identical parameters and u vectors (0: only at the end).', format: 'count', default: 50 },
  },
  checkpoint: {
    everySteps: { doc: 'Checkpoint every this many steps (0: only at the end and on SIGTERM).', format: 'count', default: 50 },
    keep: { doc: 'Complete checkpoints kept in the run directory.', format: 'positive-int', default: 3 },
  },
  diagnostics: {
    everySteps: { doc: 'Sharpness (Lanczos on the global-batch HVP), entropy bounds and σ/γ every this many steps (0: off).', format: 'count', default: 0 },
    sharpnessTopK: { doc: 'Hessian eigenvalues to track.', format: 'positive-int', default: 1 },
    lanczosIterations: { doc: 'Lanczos iterations per sharpness estimate.', format: 'positive-int', default: 20 },
    batch: { doc: 'Global size of the fixed diagnostic batch (the first samples of the training set).', format: 'positive-int', default: 64 },
  },
  guard: {
    enabled: { doc: 'Watch for attention entropy collapse.', format: 'bool', default: true },
    fraction: { doc: 'Collapse: a layer\'s lowest head entropy below this fraction of its running maximum (tracked after warm-up)...', format: 'probability', default: 0.1 },
    boundMargin: { doc: '...or within this many nats of its Theorem 3.1 bound (0: not used).', format: 'non-negative', default: 0 },
    window: { doc: '...for this many consecutive steps.', format: 'positive-int', default: 20 },
    warmupSteps: { doc: 'Steps before the guard starts tracking and judging.', format: 'count', default: 100 },
    action: { doc: 'On collapse: none (metric + log only), rollback (to the last checkpoint, lr × lrFactor) or stop.', format: ['none', 'rollback', 'stop'], default: 'none' },
    lrFactor: { doc: 'Learning-rate factor applied at each rollback.', format: 'positive', default: 0.5 },
    maxRollbacks: { doc: 'Rollbacks before the guard stops the job instead.', format: 'count', default: 3 },
  },
  metrics: {
    enabled: { doc: 'Serve Prometheus /metrics from every process.', format: 'bool', default: true },
    port: { doc: 'Base port: the coordinator serves on it, worker with local rank r on port + 1 + r (0: ephemeral ports).', format: 'count', default: 9400 },
    host: { doc: 'Address the /metrics servers bind.', format: 'string', default: '0.0.0.0' },
    perHead: { doc: 'Which workers export per-head entropy series: rank0, all (with a rank label) or none.', format: ['rank0', 'all', 'none'], default: 'rank0' },
  },
  log: {
    level: { doc: 'Log level.', format: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], default: 'info' },
  },
} as const;

/** The validated, typed configuration: derived from the schema, never written out by hand. */
export type Config = ConfigOf<typeof schema>;
