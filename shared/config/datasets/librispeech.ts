// LibriSpeech (data.kind librispeech, task asr): data.librispeech.*.
import type { Fragment } from '../fragment.js';

export const librispeech = {
  train: { doc: 'librispeech: training subsets (folders under <data.root>/LibriSpeech or <data.root>), a list or comma-separated, e.g. train-clean-100.', format: 'name-list', default: ['train-clean-100'] },
  eval: { doc: 'librispeech: evaluation subsets, one periodic evaluation set each (metrics wer_<subset>, cer_<subset>, wer_beam_<subset>, wer_lm_<subset> with an LM), e.g. dev-clean,dev-other.', format: 'name-list', default: ['dev-clean', 'dev-other'] },
  cacheDir: { doc: 'librispeech: index cache folder ("" = ~/.cache/sigmatrain/librispeech).', format: 'string', default: '' },
  indexThreads: { doc: 'librispeech: threads scanning the corpus for the index (0: the calling thread).', format: 'count', default: 2 },
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
    freqWarp: { doc: 'librispeech: vocal tract length perturbation before the masks: the mel bins of each training utterance are warped f → α·f, α uniform in [1 − w, 1 + w] (0: off; e.g. 0.1; below 0.5).', format: 'non-negative', default: 0 },
  },
  beamWidth: { doc: 'librispeech: prefix beam width of the wer_beam_<subset> evaluation (lexicon-free, no LM) and of wer_lm_<subset>.', format: 'positive-int', default: 8 },
  lm: {
    order: { doc: 'librispeech: order of a character n-gram LM (interpolated Kneser–Ney) counted from the training subsets\' transcripts and lm.texts, fused into a second prefix beam search scored as wer_lm_<subset> (0: off; e.g. 6).', format: 'count', default: 0 },
    weight: { doc: 'librispeech: LM weight in the fused score log p_ctc + weight·log p_lm + bonus·letters (e.g. 0.5).', format: 'non-negative', default: 0.5 },
    bonus: { doc: 'librispeech: score per emitted letter token in the fused search, against the LM\'s preference for short outputs.', format: 'non-negative', default: 1 },
    texts: { doc: 'librispeech: extra text files for the LM, comma-separated paths ("" = none), one transcript per line (letters, apostrophes, spaces, either case; e.g. librispeech-lm-norm.txt).', format: 'string', default: '' },
  },
  featureThreads: { doc: 'librispeech: data threads per worker that read, decode FLAC, compute features and SpecAugment (0: the training thread, overlapped by prefetch only).', format: 'count', default: 1 },
} as const satisfies Fragment;
