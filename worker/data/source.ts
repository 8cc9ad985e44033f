// Where a worker's batches come from: small datasets decoded once into memory (shapes, imagefolder), or ImageNet
// streamed through decode threads with the DeiT augmentations. Both answer "this rank's part of global step s".
import { availableParallelism } from 'node:os';
import type { Config } from '../../shared/config/index.js';
import { SigmaError } from '../../shared/errors.js';
import { prepareData, type PreparedData } from './prepare.js';
import { globalBatches, splitForRank, stepsPerEpoch } from './sampler.js';
import { indexImageNet } from './imagenet.js';
import { Loader } from './loader.js';
import { DecodePool } from './pool.js';
import { trainTransform, evalTransform } from './augment.js';
import { DEFAULT_ERASING } from './transforms.js';
import type { SampleIndex, Skipped } from './imagefolder.js';

export interface SourceBatch {
  /** NHWC normalised images of this rank's samples. */
  x: Float32Array;
  y: Int32Array;
  n: number;
  /** [n, classes] soft targets (mixup/cutmix with label smoothing folded in), when mixing is on. */
  soft?: Float32Array;
  skipped: Skipped[];
}

export interface DataSource {
  readonly trainSize: number;
  readonly classes: string[];
  readonly stepsPerEpoch: number;
  /** Unreadable images found while preparing (cached sources find them all up front). */
  readonly initiallySkipped: Skipped[];
  /** Samples of this rank at global step `step` (calls come in increasing step order within a generation). */
  trainBatch(step: number, worldSize: number, rank: number): Promise<SourceBatch>;
  /** This rank's slices of the validation set, in chunks. */
  valBatches(worldSize: number, rank: number): AsyncIterable<SourceBatch>;
  /** The first `n` training samples, untransformed beyond normalisation (sharpness's fixed diagnostic batch). */
  diagnosticBatch(n: number, worldSize: number, rank: number): Promise<SourceBatch>;
  close(): Promise<void>;
}

class CachedSource implements DataSource {
  readonly stepsPerEpoch: number;
  private epochOf = -1;
  private batches: Int32Array[] = [];
  constructor(private readonly d: PreparedData, private readonly config: Readonly<Config>) {
    this.stepsPerEpoch = stepsPerEpoch(d.train.index.ids.length, config.train.globalBatch, false);
  }
  get trainSize(): number {
    return this.d.train.index.ids.length;
  }
  get classes(): string[] {
    return this.d.classes;
  }
  get initiallySkipped(): Skipped[] {
    return [...this.d.train.skipped, ...this.d.val.skipped];
  }
  async trainBatch(step: number, worldSize: number, rank: number): Promise<SourceBatch> {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (epoch !== this.epochOf) {
      this.batches = globalBatches(this.trainSize, this.config.seed, epoch, this.config.train.globalBatch);
      this.epochOf = epoch;
    }
    return this.d.train.gather(splitForRank(this.batches[step % this.stepsPerEpoch], worldSize, rank));
  }
  async *valBatches(worldSize: number, rank: number): AsyncIterable<SourceBatch> {
    yield this.d.val.gather(splitForRank(this.d.val.index.ids, worldSize, rank));
  }
  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<SourceBatch> {
    const ids = this.d.train.index.ids.subarray(0, Math.min(n, this.trainSize));
    return this.d.train.gather(splitForRank(ids, worldSize, rank));
  }
  async close(): Promise<void> {}
}

class ImageNetSource implements DataSource {
  readonly stepsPerEpoch: number;
  private loader: Loader | undefined;
  private loaderKey = '';
  private readonly pool: DecodePool;
  constructor(
    private readonly train: SampleIndex,
    private readonly val: SampleIndex,
    private readonly config: Readonly<Config>,
  ) {
    const d = config.data.imagenet;
    const threads = d.threads > 0 ? d.threads : availableParallelism();
    this.pool = new DecodePool({ threads });
    // Repeated augmentation counts every image `repeats` times per epoch; the last partial batch is dropped.
    this.stepsPerEpoch = Math.floor((train.ids.length * d.repeats) / config.train.globalBatch);
    if (this.stepsPerEpoch < 1) {
      throw new SigmaError('SGT_CONFIG_INVALID', `train.globalBatch ${config.train.globalBatch} exceeds the ${train.ids.length * d.repeats} training samples per epoch of ${config.data.root} (data.imagenet.repeats ${d.repeats})`);
    }
  }
  get trainSize(): number {
    return this.train.ids.length;
  }
  get classes(): string[] {
    return this.train.classes;
  }
  readonly initiallySkipped: Skipped[] = [];

  private trainT() {
    const d = this.config.data.imagenet;
    return trainTransform({
      size: this.config.model.vit.imageSize, scale: [d.augment.scaleMin, 1], ratio: [d.augment.ratioMin, d.augment.ratioMax],
      interpolation: d.interpolation, hflip: d.augment.hflip, randAugment: d.augment.randAugment || null,
      mean: [...d.mean] as [number, number, number], std: [...d.std] as [number, number, number],
      erasing: d.augment.erasing > 0 ? { ...DEFAULT_ERASING, p: d.augment.erasing } : null,
    });
  }

  private evalT() {
    const d = this.config.data.imagenet;
    return evalTransform({ size: this.config.model.vit.imageSize, cropPct: d.evalCropPct, interpolation: d.interpolation, mean: [...d.mean] as [number, number, number], std: [...d.std] as [number, number, number] });
  }

  async trainBatch(step: number, worldSize: number, rank: number): Promise<SourceBatch> {
    const gb = this.config.train.globalBatch;
    if (gb % worldSize !== 0) {
      throw new SigmaError('SGT_CONFIG_INVALID', `train.globalBatch ${gb} does not split evenly over ${worldSize} workers (data.kind imagenet): use a multiple of the world size`);
    }
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const within = step % this.stepsPerEpoch;
    const key = `${worldSize}/${rank}`;
    const cursor = this.loader?.cursor;
    if (!this.loader || this.loaderKey !== key || !cursor || cursor.epoch !== epoch || cursor.step !== within) {
      this.loader?.close();
      const d = this.config.data.imagenet;
      const mixOn = d.mix.mixupAlpha > 0 || d.mix.cutmixAlpha > 0;
      this.loader = new Loader(this.train, {
        transform: this.trainT(), seed: this.config.seed, batchPerRank: gb / worldSize, worldSize, rank, epoch, step: within,
        repeats: d.repeats, pool: this.pool, prefetch: d.prefetch, numClasses: d.numClasses,
        mix: mixOn ? { mixupAlpha: d.mix.mixupAlpha, cutmixAlpha: d.mix.cutmixAlpha, switchProb: d.mix.switchProb, prob: d.mix.prob, labelSmoothing: d.mix.labelSmoothing, correctLam: true } : null,
      });
      this.loaderKey = key;
    }
    const b = await this.loader.next();
    if (!b) throw new SigmaError('SGT_DATA_INVALID', `the training loader ended before step ${step}`);
    return b;
  }

  /** Decodes `ids` of `index` with the eval transform; unreadable images are left out and reported. */
  private async decodeEval(index: SampleIndex, ids: Int32Array): Promise<SourceBatch> {
    const t = this.evalT();
    const rows = await this.pool.decode(Array.from(ids, (id) => index.paths[id]), Array.from(ids, () => 0), t);
    const per = t.size * t.size * 3;
    const keep: number[] = [];
    const skipped: Skipped[] = [];
    rows.reasons.forEach((r, j) => (r ? skipped.push({ id: ids[j], path: index.paths[ids[j]], reason: r }) : keep.push(j)));
    const x = new Float32Array(keep.length * per);
    keep.forEach((j, k) => x.set(rows.x.subarray(j * per, (j + 1) * per), k * per));
    return { x, y: Int32Array.from(keep, (j) => index.labels[ids[j]]), n: keep.length, skipped };
  }

  async *valBatches(worldSize: number, rank: number): AsyncIterable<SourceBatch> {
    const ids = splitForRank(this.val.ids, worldSize, rank);
    for (let i = 0; i < ids.length; i += 64) yield this.decodeEval(this.val, ids.subarray(i, i + 64));
  }

  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<SourceBatch> {
    return this.decodeEval(this.train, splitForRank(this.train.ids.subarray(0, Math.min(n, this.trainSize)), worldSize, rank));
  }

  async close(): Promise<void> {
    this.loader?.close();
    await this.pool.close();
  }
}

export async function openDataSource(config: Readonly<Config>): Promise<DataSource> {
  if (config.data.kind !== 'imagenet') return new CachedSource(await prepareData(config), config);
  const train = await indexImageNet(config.data.root, 'train');
  const d = config.data.imagenet;
  const val = await indexImageNet(config.data.root, 'val', { classes: train.classes, valLabels: d.valLabels || undefined });
  if (train.classes.length !== d.numClasses) {
    throw new SigmaError('SGT_DATA_INVALID', `data.imagenet.numClasses is ${d.numClasses} but ${config.data.root}/train has ${train.classes.length} classes: set data.imagenet.numClasses to ${train.classes.length}`);
  }
  return new ImageNetSource(train, val, config);
}
