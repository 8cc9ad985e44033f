// The one convict schema of sigmatrain: every key with its default, format and doc. The Config type mirrors it.
import { TASK_NAMES, type TaskName } from '../tasks.js';

export interface Config {
  task: TaskName;
  seed: number;
  backend: 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
  model: {
    family: 'vit' | 'encoder' | 'lm' | 'seq2seq' | 'speech';
    variant: string;
    encoder: { dim: number; depth: number; heads: number; mlpDim: number };
    lm: { variant: string; maxPositions: number; activation: 'relu' | 'gelu' };
    seq2seq: { variant: string; activation: 'relu' | 'gelu'; maxPositions: number };
    speech: { variant: string; positions: 'cape' | 'sinusoidal'; frontEnd: 'glu' | 'linear'; kernel: number; stride: number; layerDrop: number };
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
    kind: 'shapes' | 'imagefolder' | 'imagenet' | 'wikitext' | 'wmt' | 'librispeech';
    root: string;
    numClasses: number;
    mean: [number, number, number];
    std: [number, number, number];
    shapes: { trainPerClass: number; valPerClass: number };
    reverse: { vocab: number; minLength: number; maxLength: number; trainSize: number; valSize: number };
    wikitext: { variant: 'tokens' | 'raw'; blockSize: number; scoreLast: number; minCount: number; cacheDir: string; evalBatch: number };
    wmt: {
      src: string; tgt: string; valid: string; test: string; corpora: string; vocabSize: number; vocabSentences: number;
      clean: { removeEmpty: boolean; minTokens: number; maxTokens: number; maxChars: number; maxRatio: number };
      translator: string; workDir: string; plannedWorkers: number; evalSentences: number;
    };
    librispeech: {
      train: string[];
      eval: string[];
      cacheDir: string;
      indexThreads: number;
      featureThreads: number;
      features: { kind: 'kaldi-fbank' | 'logmel'; bins: number };
      specAugment: { enabled: boolean; freqMasks: number; freqWidth: number; timeMasks: number; timeWidth: number; maxTimeFraction: number };
      beamWidth: number;
    };
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
    maxTokens: number;
    maxSeconds: number;
    maxFrames: number;
    budgetWorkers: number;
  };
  decode: { beam: number; lenpen: number; maxLenA: number; maxLenB: number };
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
    schedule: 'constant' | 'cosine' | 'step' | 'inverse-sqrt' | 'plateau';
    plateau: { patience: number; factor: number; threshold: number };
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
    doc: 'What the job is (worker/tasks/): classify (images: shapes, imagefolder, imagenet), reverse (toy sequence reversal, the proof of the Task seam) or lm (language modelling on WikiText-103: model.family lm, data.kind wikitext).',
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
    family: { doc: 'Model family (one file per family in worker/models): vit (images), encoder (token sequences), lm (decoder-only causal language model), seq2seq (encoder-decoder translation) or speech (CTC acoustic model).', format: ['vit', 'encoder', 'lm', 'seq2seq', 'speech'], default: 'vit' },
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
    lm: {
      variant: {
        doc: 'lm: a width (test, tiny, demo, base = 6 layers of d512, big), "<M>L" at d512/FFN 2048/8 heads (e.g. "32L", the paper\'s WikiText-103 depth) or "<width>-<M>L" (e.g. "tiny-4L"). Norm, σReparam and Q/K/V split come from model.norm, model.reparam, model.qkv.',
        format: 'string',
        default: 'tiny',
      },
      maxPositions: { doc: 'lm: longest sequence the sinusoidal position table covers; at least data.wikitext.blockSize.', format: 'positive-int', default: 512 },
      activation: { doc: 'lm: FFN non-linearity (relu as fairseq\'s transformer_lm, or gelu).', format: ['relu', 'gelu'], default: 'relu' },
    },
    seq2seq: {
      variant: {
        doc: 'seq2seq: base, big, test, tiny, demo, "<N>L-<M>L" (the paper\'s deep MT models at d512/FFN 2048/8 heads, e.g. 18L-18L, 100L-100L) or "<width>-<N>L-<M>L" (e.g. tiny-12L-12L).',
        format: 'string',
        default: 'demo',
      },
      activation: { doc: 'seq2seq: FFN non-linearity (relu as Vaswani et al. and fairseq, or gelu).', format: ['relu', 'gelu'], default: 'relu' },
      maxPositions: { doc: 'seq2seq: longest source or target (subword tokens with </s>) the sinusoidal positions cover; longer training pairs are left out and counted, longer test sentences are cut (and logged).', format: 'positive-int', default: 256 },
    },
    speech: {
      variant: { doc: 'speech: variant by name: paper (d768, 36 layers), bench (d256, 6), demo (d128, 4), test (d32, 2).', format: 'string', default: 'demo' },
      positions: { doc: 'speech: cape (the paper: CAPE, random shifts and scaling in training) or sinusoidal.', format: ['cape', 'sinusoidal'], default: 'cape' },
      frontEnd: { doc: 'speech: front-end convolution with a GLU (2·dim channels gated, wav2letter) or linear.', format: ['glu', 'linear'], default: 'glu' },
      kernel: { doc: 'speech: front-end convolution kernel in frames (paper 7).', format: 'positive-int', default: 7 },
      stride: { doc: 'speech: front-end stride in frames (paper 3: 30 ms per output frame).', format: 'positive-int', default: 3 },
      layerDrop: { doc: 'speech: probability of skipping an encoder layer in a training forward (LayerDrop).', format: 'probability', default: 0 },
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
      doc: 'shapes: a generated ImageFolder of PNG shapes under data.root; imagefolder: an existing small train/ val/ tree decoded once into memory; imagenet: train/<wnid>/*.JPEG + val (folders or LOC_val_solution.csv) streamed through decode threads with the DeiT augmentations; wikitext: WikiText-103 (task lm) under data.root; wmt: WMT parallel text (task translate) under data.root; librispeech: the LibriSpeech tree (task asr) under data.root.',
      format: ['shapes', 'imagefolder', 'imagenet', 'wikitext', 'wmt', 'librispeech'],
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
    wikitext: {
      variant: { doc: 'wikitext: tokens (wikitext-103/wiki.*.tokens, the benchmark) or raw (wikitext-103-raw/wiki.*.raw), found under data.root (or data.root itself holding the files).', format: ['tokens', 'raw'], default: 'tokens' },
      blockSize: { doc: 'wikitext: tokens per training block (fairseq --tokens-per-sample) and per evaluation window; train.globalBatch counts blocks.', format: 'positive-int', default: 512 },
      scoreLast: { doc: 'wikitext: evaluation scores the last this many tokens of each window (the window advances by it; the first window scores all), so each token has ≥ blockSize − scoreLast tokens of context. The paper: 512/256.', format: 'positive-int', default: 256 },
      minCount: { doc: 'wikitext: words seen fewer times in the training file read as <unk> (1: every word, the WikiText-103 vocabulary of 267 735).', format: 'positive-int', default: 1 },
      cacheDir: { doc: 'wikitext: where the vocabulary and token caches go ("": <dataset folder>/sigmatrain-cache); set it when the dataset folder is read-only. Prepared once; concurrent workers wait on a lock.', format: 'string', default: '' },
      evalBatch: { doc: 'wikitext: evaluation windows per forward (each forward holds [evalBatch, blockSize, vocabulary] logits: 2 × 512 × 267 735 floats ≈ 1.1 GB on WikiText-103).', format: 'positive-int', default: 2 },
    },
    wmt: {
      src: { doc: 'wmt: source language code as in the file names (training/*.de-en.en, dev/<set>-ende-src.en.sgm).', format: 'string', default: 'en' },
      tgt: { doc: 'wmt: target language code.', format: 'string', default: 'de' },
      valid: { doc: 'wmt: validation set name (SGM, WMT XML or aligned files under data.root, e.g. newstest2013), scored every evaluation as valid_bleu/valid_chrf.', format: 'string', default: 'newstest2013' },
      test: { doc: 'wmt: test set name (e.g. newstest2014), scored once after the last step as bleu/chrf.', format: 'string', default: 'newstest2014' },
      corpora: { doc: 'wmt: comma-separated prefixes of the training files to use (e.g. "europarl-v7,commoncrawl"); "" uses every training corpus found.', format: 'string', default: '' },
      vocabSize: { doc: 'wmt: joint BPE vocabulary size, learned on first use from the cleaned training text (the trainer caps it at 30 000).', format: 'positive-int', default: 8000 },
      vocabSentences: { doc: 'wmt: learn the vocabulary from at most this many training sentences (0: all).', format: 'count', default: 2000000 },
      clean: {
        removeEmpty: { doc: 'wmt: drop training pairs with an empty side.', format: 'bool', default: true },
        minTokens: { doc: 'wmt: fewest whitespace tokens per training side (clean-corpus-n min).', format: 'count', default: 1 },
        maxTokens: { doc: 'wmt: most whitespace tokens per training side (clean-corpus-n max; fairseq uses 250; 0: no limit).', format: 'count', default: 250 },
        maxChars: { doc: 'wmt: most characters per training side (0: no limit).', format: 'count', default: 0 },
        maxRatio: { doc: 'wmt: largest token-count ratio of a training pair either way (clean-corpus-n -ratio; 0: no limit).', format: 'non-negative', default: 1.5 },
      },
      translator: { doc: 'wmt: WMT XML test sets: which reference translator to score against ("" = the file\'s first).', format: 'string', default: '' },
      workDir: { doc: 'wmt: where the vocabulary and token cache live ("" = <data.root>/.sigmatrain, or a temp directory when data.root is read-only).', format: 'string', default: '' },
      plannedWorkers: { doc: 'wmt: world size the per-step batches are planned for (train.maxTokens per worker): sets the global batch. A generation with another world size re-splits the same global batches over its workers.', format: 'positive-int', default: 1 },
      evalSentences: { doc: 'wmt: beam-search at most this many sentences of the validation set each periodic evaluation (0: all; the test set is always scored whole).', format: 'count', default: 0 },
    },
    librispeech: {
      train: { doc: 'librispeech: training subsets (folders under <data.root>/LibriSpeech or <data.root>), a list or comma-separated, e.g. train-clean-100.', format: 'name-list', default: ['train-clean-100'] },
      eval: { doc: 'librispeech: evaluation subsets, one periodic evaluation set each (metrics wer_<subset>, cer_<subset>, wer_beam_<subset>), e.g. dev-clean,dev-other.', format: 'name-list', default: ['dev-clean', 'dev-other'] },
      cacheDir: { doc: 'librispeech: index cache folder ("" = ~/.cache/sigmatrain/librispeech).', format: 'string', default: '' },
      indexThreads: { doc: 'librispeech: threads scanning the corpus for the index (0: the calling thread).', format: 'count', default: 2 },
      featureThreads: { doc: 'librispeech: data threads per worker that read, decode FLAC, compute features and SpecAugment (0: the training thread, overlapped by prefetch only).', format: 'count', default: 1 },
      features: {
        kind: { doc: 'librispeech: features, kaldi-fbank (torchaudio.compliance.kaldi.fbank) or logmel (torchaudio MelSpectrogram, the paper).', format: ['kaldi-fbank', 'logmel'], default: 'logmel' },
        bins: { doc: 'librispeech: mel bins (paper 80).', format: 'positive-int', default: 80 },
      },
      specAugment: {
        enabled: { doc: 'librispeech: SpecAugment on training utterances.', format: 'bool', default: true },
        freqMasks: { doc: 'librispeech: SpecAugment frequency masks (paper 2).', format: 'count', default: 2 },
        freqWidth: { doc: 'librispeech: largest frequency mask in bins (paper 30).', format: 'count', default: 30 },
        timeMasks: { doc: 'librispeech: SpecAugment time masks (paper 10).', format: 'count', default: 10 },
        timeWidth: { doc: 'librispeech: largest time mask in frames (paper 50).', format: 'count', default: 50 },
        maxTimeFraction: { doc: 'librispeech: largest fraction of an utterance one time mask covers (paper 0.1).', format: 'probability', default: 0.1 },
      },
      beamWidth: { doc: 'librispeech: prefix beam width of the wer_beam_<subset> evaluation (lexicon-free, no LM).', format: 'positive-int', default: 8 },
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
