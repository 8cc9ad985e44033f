// The one convict schema of sigmatrain: every key with its default, format and doc. The Config type mirrors it.
import { TASK_NAMES, type TaskName } from '../tasks.js';

export interface Config {
  task: TaskName;
  seed: number;
  backend: 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
  model: {
    family: 'vit' | 'encoder';
    variant: string;
    encoder: { dim: number; depth: number; heads: number; mlpDim: number };
    imageSize: number;
    patchSize: number;
    reparam: 'sigma' | 'stats' | 'none';
    gammaInit: 'one' | 'spectral';
    powerIterations: number;
    qkv: 'joint' | 'separate';
    norm: 'pre' | 'post' | 'none' | 'deepnorm';
    initStd: number;
    patchInitGain: number;
    posEmb: 'learned' | 'sincos';
    pool: 'cls' | 'gap';
    dropout: number;
    attnDropout: number;
    dropPath: number;
    temperature: number;
    temperatureSchedule: { fromEpoch?: number; fromStep?: number; value: number }[];
  };
  data: {
    kind: 'shapes' | 'imagefolder' | 'imagenet';
    root: string;
    numClasses: number;
    mean: [number, number, number];
    std: [number, number, number];
    shapes: { trainPerClass: number; valPerClass: number };
    reverse: { vocab: number; minLength: number; maxLength: number; trainSize: number; valSize: number };
    valLabels: string;
    interpolation: 'bicubic' | 'bilinear';
    evalCropPct: number;
    augment: { scaleMin: number; ratioMin: number; ratioMax: number; hflip: number; randAugment: string; erasing: number };
    mix: { mixupAlpha: number; cutmixAlpha: number; switchProb: number; prob: number; labelSmoothing: number };
    repeats: number;
    threads: number;
    prefetch: number;
  };
  train: {
    epochs: number;
    maxSteps: number;
    globalBatch: number;
    microBatch: number;
    labelSmoothing: number;
    evalEveryEpochs: number;
    logEverySteps: number;
  };
  optim: {
    name: 'sgd' | 'adamw' | 'lars' | 'lamb' | 'adagrad';
    lr: number;
    momentum: number;
    nesterov: boolean;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    trustCoefficient: number;
    initialAccumulator: number;
    excludeFromAdaptation: ('weight' | 'bias' | 'gamma' | 'norm' | 'embed')[];
    warmupSteps: number;
    warmupInit: number;
    schedule: 'constant' | 'cosine' | 'step' | 'inverse-sqrt';
    minLrRatio: number;
    milestones: number[];
    milestoneUnit: 'steps' | 'epochs';
    factor: number;
    timescale: number;
    clipGradNorm: number;
    gammaLrScale: number;
    emaDecay: number;
  };
  dist: {
    coordinator: string;
    minWorkers: number;
    maxWorkers: number;
    joinWaitMs: number;
    heartbeatMs: number;
    heartbeatTimeoutMs: number;
    busyTimeoutMs: number;
    allreduceTimeoutMs: number;
    chunkBytes: number;
    transport: 'auto' | 'ipc' | 'tcp';
    ringHost: string;
    ringPortBase: number;
    consistencyEverySteps: number;
  };
  checkpoint: { everySteps: number; keep: number };
  diagnostics: {
    everySteps: number;
    sharpnessTopK: number;
    lanczosIterations: number;
    batch: number;
  };
  guard: {
    enabled: boolean;
    fraction: number;
    boundMargin: number;
    window: number;
    warmupSteps: number;
    action: 'none' | 'rollback' | 'stop';
    lrFactor: number;
    maxRollbacks: number;
  };
  metrics: { enabled: boolean; port: number; host: string; perHead: 'rank0' | 'all' | 'none' };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent' };
}

export const schema = {
  task: {
    doc: 'What the job is (worker/tasks/): classify (images: shapes, imagefolder, imagenet) or reverse (toy sequence reversal, the proof of the Task seam).',
    format: [...TASK_NAMES],
    default: 'classify',
  },
  seed: { doc: 'Seed of every random choice (init, data order, dropout); derived per rank and step.', format: 'count', default: 0 },
  backend: {
    doc: 'tfjs backend: auto (tensorflow > webgpu on a hardware GPU adapter > wasm > cpu), tensorflow (tfjs-node[-gpu], if installed), webgpu (Dawn: optional npm packages webgpu + @tensorflow/tfjs-backend-webgpu, a GPU with a Vulkan driver), wasm, cpu.',
    format: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'],
    default: 'auto',
  },
  model: {
    family: { doc: 'Model family (one file per family in worker/models): vit (images) or encoder (token sequences).', format: ['vit', 'encoder'], default: 'vit' },
    variant: {
      doc: 'vit: variant by name: "Ti/16", "S/16", "B/16", "L/16", "H/14", or small ones "test/4", "demo/4", "bench/4".',
      format: 'string',
      default: 'demo/4',
    },
    encoder: {
      dim: { doc: 'encoder: model width.', format: 'positive-int', default: 64 },
      depth: { doc: 'encoder: blocks.', format: 'positive-int', default: 2 },
      heads: { doc: 'encoder: attention heads (dim must divide by it).', format: 'positive-int', default: 4 },
      mlpDim: { doc: 'encoder: MLP hidden width.', format: 'positive-int', default: 128 },
    },
    imageSize: { doc: 'Input image side in pixels (square).', format: 'positive-int', default: 16 },
    patchSize: { doc: 'Patch side in pixels; 0 takes the variant\'s.', format: 'count', default: 0 },
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
    patchInitGain: { doc: 'Multiplies initStd for the patch embedding only (the σReparam reference code uses 0.125 for ViT-L).', format: 'positive', default: 1 },
    posEmb: { doc: 'Position embedding: learned or sincos (fixed 2-D).', format: ['learned', 'sincos'], default: 'learned' },
    pool: { doc: 'Classifier input: cls token or global average of patch tokens.', format: ['cls', 'gap'], default: 'cls' },
    dropout: { doc: 'Dropout rate after attention projection and MLP.', format: 'probability', default: 0 },
    attnDropout: { doc: 'Dropout rate on attention probabilities.', format: 'probability', default: 0 },
    dropPath: { doc: 'Stochastic-depth rate of the last block (linear in depth).', format: 'probability', default: 0 },
    temperature: { doc: 'Global attention temperature τ (logits / τ).', format: 'positive', default: 1 },
    temperatureSchedule: {
      doc: 'τ changes during training: a list of {fromEpoch | fromStep, value}, e.g. [{fromEpoch: 5, value: 0.1}] (the paper\'s Appendix B intervention); the last entry that has started wins.',
      format: 'temperature-schedule',
      default: [],
    },
  },
  data: {
    kind: {
      doc: 'shapes: a generated ImageFolder of PNG shapes under data.root; imagefolder: an existing small train/ val/ tree decoded once into memory; imagenet: train/<wnid>/*.JPEG + val (folders or LOC_val_solution.csv) streamed through decode threads with the DeiT augmentations.',
      format: ['shapes', 'imagefolder', 'imagenet'],
      default: 'shapes',
    },
    root: { doc: 'Dataset root directory (holds train/ and val/).', format: 'string', default: 'data/shapes16' },
    numClasses: { doc: 'Number of classes (must match the dataset\'s class folders).', format: 'positive-int', default: 10 },
    mean: { doc: 'Per-channel mean subtracted after scaling pixels to [0, 1].', format: 'triple', default: [0.5, 0.5, 0.5] },
    std: { doc: 'Per-channel std dividing after the mean.', format: 'triple', default: [0.25, 0.25, 0.25] },
    shapes: {
      trainPerClass: { doc: 'Generated training images per class.', format: 'positive-int', default: 400 },
      valPerClass: { doc: 'Generated validation images per class.', format: 'positive-int', default: 60 },
    },
    reverse: {
      vocab: { doc: 'reverse: vocabulary size including the padding token 0.', format: 'positive-int', default: 16 },
      minLength: { doc: 'reverse: shortest sequence.', format: 'positive-int', default: 4 },
      maxLength: { doc: 'reverse: longest sequence (the padded length).', format: 'positive-int', default: 8 },
      trainSize: { doc: 'reverse: training sequences, drawn from the seed.', format: 'positive-int', default: 4096 },
      valSize: { doc: 'reverse: validation sequences, drawn from the seed.', format: 'positive-int', default: 512 },
    },
    valLabels: { doc: 'imagenet: path of LOC_val_solution.csv for a flat val/ ("" searches root, val/ and the Kaggle layout).', format: 'string', default: '' },
    interpolation: { doc: 'imagenet: resize interpolation.', format: ['bicubic', 'bilinear'], default: 'bicubic' },
    evalCropPct: { doc: 'imagenet: eval resize to imageSize / evalCropPct, then centre crop imageSize (224/256 = 0.875).', format: 'probability', default: 0.875 },
    augment: {
      scaleMin: { doc: 'imagenet: RandomResizedCrop smallest area fraction.', format: 'probability', default: 0.08 },
      ratioMin: { doc: 'imagenet: RandomResizedCrop smallest aspect ratio.', format: 'positive', default: 0.75 },
      ratioMax: { doc: 'imagenet: RandomResizedCrop largest aspect ratio.', format: 'positive', default: 1.3333333333333333 },
      hflip: { doc: 'imagenet: horizontal-flip probability.', format: 'probability', default: 0.5 },
      randAugment: { doc: 'imagenet: RandAugment spec (timm syntax, e.g. rand-m9-mstd0.5-inc1; "" = off).', format: 'string', default: 'rand-m9-mstd0.5-inc1' },
      erasing: { doc: 'imagenet: random-erasing probability.', format: 'probability', default: 0.25 },
    },
    mix: {
      mixupAlpha: { doc: 'imagenet: mixup Beta(α, α) (0: off).', format: 'non-negative', default: 0.8 },
      cutmixAlpha: { doc: 'imagenet: cutmix Beta(α, α) (0: off).', format: 'non-negative', default: 1.0 },
      switchProb: { doc: 'imagenet: probability of cutmix rather than mixup when both are on.', format: 'probability', default: 0.5 },
      prob: { doc: 'imagenet: probability a batch is mixed at all.', format: 'non-negative', default: 1 },
      labelSmoothing: { doc: 'imagenet: label smoothing folded into the soft targets (train.labelSmoothing is then not applied again).', format: 'probability', default: 0.1 },
    },
    repeats: { doc: 'imagenet: repeated augmentation — occurrences of each image per epoch.', format: 'positive-int', default: 1 },
    threads: { doc: 'imagenet: decode threads per worker (set UV_THREADPOOL_SIZE ≥ this in the environment).', format: 'count', default: 2 },
    prefetch: { doc: 'imagenet: batches decoded ahead.', format: 'count', default: 2 },
  },
  train: {
    epochs: { doc: 'Epochs to train.', format: 'positive-int', default: 10 },
    maxSteps: { doc: 'Stop after this many optimizer steps (0: no limit).', format: 'count', default: 0 },
    globalBatch: { doc: 'Samples per optimizer step across all workers (split evenly; the per-worker batch is derived).', format: 'positive-int', default: 64 },
    microBatch: { doc: 'Largest forward/backward a worker runs at once; a larger per-worker batch is accumulated in micro-batches (0: no limit).', format: 'count', default: 0 },
    labelSmoothing: { doc: 'Label smoothing ε of the cross-entropy.', format: 'probability', default: 0 },
    evalEveryEpochs: { doc: 'Validate every this many epochs (and at the end).', format: 'positive-int', default: 1 },
    logEverySteps: { doc: 'Print a progress line every this many steps.', format: 'positive-int', default: 10 },
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
    schedule: { doc: 'After warmup: constant, cosine (to lr·minLrRatio), step (× factor at each milestone) or inverse-sqrt.', format: ['constant', 'cosine', 'step', 'inverse-sqrt'], default: 'constant' },
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
