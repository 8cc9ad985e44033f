// Image classification (synthetic shapes, ImageFolder, ImageNet): the ViT over NHWC images, softmax cross-entropy
// with label smoothing or mixup/cutmix soft targets, per-step accuracy, and top-1/top-5 evaluation — all as sums
// over samples.
import * as tf from '@tensorflow/tfjs';
import { activeImageData, type Config } from '../../shared/config/index.js';
import { openDataSource, type DataSource, type SourceBatch } from '../data/source.js';
import { buildModel } from '../models/index.js';
import type { Model } from '../models/model.js';
import { logSoftmax } from '../kernels/ops.js';
import type { BatchTensors, EvalMetric, LossOptions, LossSums, Task, TaskBatch, TaskData } from './task.js';

export interface ClassifyBatch extends TaskBatch {
  /** Images NHWC, normalised: [samples, size, size, channels]. */
  x: Float32Array;
  y: Int32Array;
  /** [samples, classes] soft targets (mixup/cutmix); when present they replace y (and label smoothing) in the loss. */
  soft?: Float32Array;
}

/** Σ_i CE(logits_i, smooth(y_i)) with label smoothing ε: target = (1−ε)·onehot + ε/K. */
export function crossEntropySum(logits: tf.Tensor2D, labels: tf.Tensor1D, smoothing: number): tf.Scalar {
  const k = logits.shape[1];
  const logp = logSoftmax(logits); // second-order-correct (Hessian-vector products go through this loss)
  const onehot = tf.oneHot(labels, k);
  const target = smoothing > 0 ? tf.add(tf.mul(onehot, 1 - smoothing), smoothing / k) : onehot;
  return tf.neg(tf.sum(tf.mul(target, logp))) as tf.Scalar;
}

/** A source batch as the task's batch: samples are the unit. */
function asBatch(b: SourceBatch): ClassifyBatch {
  return { x: b.x, y: b.y, soft: b.soft, samples: b.n, units: b.n, skipped: b.skipped };
}

class ClassifyData implements TaskData<ClassifyBatch> {
  constructor(private readonly source: DataSource) {}
  get stepsPerEpoch(): number {
    return this.source.stepsPerEpoch;
  }
  get initiallySkipped() {
    return this.source.initiallySkipped;
  }
  get description(): string {
    return `${this.source.trainSize} train images, ${this.source.classes.length} classes`;
  }
  async trainBatch(step: number, worldSize: number, rank: number): Promise<ClassifyBatch> {
    return asBatch(await this.source.trainBatch(step, worldSize, rank));
  }
  async *valBatches(worldSize: number, rank: number): AsyncIterable<ClassifyBatch> {
    for await (const b of this.source.valBatches(worldSize, rank)) yield asBatch(b);
  }
  async diagnosticBatch(n: number, worldSize: number, rank: number): Promise<ClassifyBatch> {
    return asBatch(await this.source.diagnosticBatch(n, worldSize, rank));
  }
  close(): Promise<void> {
    return this.source.close();
  }
}

export class ClassifyTask implements Task<ClassifyBatch> {
  readonly name = 'classify' as const;
  readonly unit = 'samples' as const;
  readonly model: Model;
  readonly stepMetrics = ['accuracy'] as const;
  readonly evalSums = ['top1', 'top5', 'loss', 'n'] as const;
  readonly evalMetrics: readonly EvalMetric[] = [
    { name: 'val_top1', sum: 'top1', per: 'n' },
    { name: 'val_top5', sum: 'top5', per: 'n' },
    { name: 'val_loss', sum: 'loss', per: 'n' },
  ];
  readonly evalChunk = 128;
  private readonly size: number;
  private readonly classes: number;

  /** `model`: a prebuilt one (tests); `channels`: of the images (3 for every dataset; 1 in tests). */
  constructor(private readonly config: Readonly<Config>, model?: Model, private readonly channels = 3) {
    this.classes = activeImageData(config).numClasses;
    this.model = model ?? buildModel(config, { numClasses: this.classes });
    this.size = config.model.vit.imageSize;
  }

  async open(): Promise<ClassifyData> {
    return new ClassifyData(await openDataSource(this.config));
  }

  split(batch: ClassifyBatch, maxSamples: number): ClassifyBatch[] {
    if (maxSamples <= 0 || batch.samples <= maxSamples) return [batch];
    const per = batch.x.length / batch.samples;
    const out: ClassifyBatch[] = [];
    for (let i = 0; i < batch.samples; i += maxSamples) {
      const n = Math.min(maxSamples, batch.samples - i);
      out.push({
        x: batch.x.subarray(i * per, (i + n) * per), y: batch.y.subarray(i, i + n), samples: n, units: n, skipped: [],
        soft: batch.soft?.subarray(i * this.classes, (i + n) * this.classes),
      });
    }
    return out;
  }

  tensors(b: ClassifyBatch): BatchTensors {
    const s = this.size;
    const c = this.channels;
    const n = b.samples;
    return {
      inputs: { images: tf.tensor4d(b.x.subarray(0, n * s * s * c), [n, s, s, c]) },
      targets: {
        labels: tf.tensor1d(b.y.subarray(0, n), 'int32'),
        ...(b.soft ? { soft: tf.tensor2d(b.soft.subarray(0, n * this.classes), [n, this.classes]) } : {}),
      },
    };
  }

  loss(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>, o: LossOptions): LossSums {
    const logits = outputs.logits as tf.Tensor2D;
    const labels = targets.labels as tf.Tensor1D;
    const loss = targets.soft
      ? (tf.neg(tf.sum(tf.mul(targets.soft, logSoftmax(logits)))) as tf.Scalar)
      : crossEntropySum(logits, labels, o.labelSmoothing);
    const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')) as tf.Scalar;
    return { loss, denominator: tf.scalar(labels.shape[0]), metrics: { accuracy: hits } };
  }

  /** Top-1 and top-5 hits (top-5 counts every sample when there are ≤ 5 classes), the loss sum and n. */
  evaluate(outputs: Record<string, tf.Tensor>, targets: Record<string, tf.Tensor>): Record<string, tf.Scalar> {
    const logits = outputs.logits as tf.Tensor2D;
    const ys = targets.labels as tf.Tensor1D;
    const k = Math.min(5, logits.shape[1]);
    const top = tf.topk(logits, k).indices; // [m, k]
    const in5 = tf.any(tf.equal(top, ys.reshape([-1, 1])), 1);
    return {
      top1: tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), ys), 'float32')),
      top5: tf.sum(tf.cast(in5, 'float32')),
      loss: crossEntropySum(logits, ys, 0),
      n: tf.scalar(ys.shape[0]),
    };
  }
}
