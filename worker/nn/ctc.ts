// CTC loss (Graves et al. 2006) over padded batches, as torch.nn.functional.ctc_loss: a fast host op for training
// (log-space forward-backward in float64, closed-form gradient) and a differentiable tfjs path for HVPs (sharpness).
//
// Shapes: logits [B, T, C] (log-softmax is applied inside), inputLengths [B] (frames past it are padding),
// targets [B, S] padded (entries past targetLengths[b] are ignored), targetLengths [B]; class `blank` (default 0)
// is the CTC blank and may not appear in a target.
//
// Why two paths: the fast op computes α, β and ∂L/∂logits in typed arrays (PyTorch's CPU algorithm); its gradient is a
// kernel output, so a second derivative through it does not exist — asking for one throws SGT_CTC_SECOND_ORDER
// instead of silently dropping the CTC part of H·v. The differentiable path writes the α recursion as tfjs ops (one
// banded logSumExp per frame), so autodiff gives the same gradient and exact Hessian-vector products, at a cost of
// ~15 small ops per frame: use it for the sharpness diagnostic (impl: 'differentiable'), not for every step.
import * as tf from '@tensorflow/tfjs';

import { SigmaError } from '../../shared/errors.js';
import { logSoftmax } from '../kernels/ops.js';

export type CtcReduction = 'none' | 'sum' | 'mean';

export interface CtcOptions {
  /** none: per-sample losses [B]; sum; mean: Σ_b loss_b / max(S_b, 1), divided by B (PyTorch's 'mean'). Default mean. */
  reduction?: CtcReduction;
  /** Infeasible samples (too few frames for their target) get loss 0 instead of +inf. Default false. */
  zeroInfinity?: boolean;
  /** Default 0. */
  blank?: number;
  /** fast: host forward-backward (no second order); differentiable: tfjs ops (HVPs work). Default fast. */
  impl?: 'fast' | 'differentiable';
}

/** The integer side of a CTC batch, on the host (it comes from the data loader and the model's length arithmetic). */
export interface CtcTargets {
  /** [B·S] row-major, padded; only the first targetLengths[b] entries of row b are read. */
  targets: ArrayLike<number>;
  targetLengths: ArrayLike<number>;
  inputLengths: ArrayLike<number>;
}

const NEG_INF = Number.NEGATIVE_INFINITY;

/** log(eᵃ + eᵇ) without overflow; −∞ is the neutral element. */
function lse2(a: number, b: number): number {
  if (a === NEG_INF) return b;
  if (b === NEG_INF) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/** Frames a target needs: one per label plus a blank between each pair of equal neighbours. */
export function minimumFrames(target: ArrayLike<number>): number {
  let need = target.length;
  for (let i = 1; i < target.length; i++) if (target[i] === target[i - 1]) need++;
  return need;
}

interface Checked {
  B: number;
  T: number;
  C: number;
  S: number;
  blank: number;
  targets: number[];
  targetLengths: number[];
  inputLengths: number[];
  /** Per sample: can the target be aligned within its frames? */
  feasible: boolean[];
}

function invalid(message: string): never {
  throw new SigmaError('SGT_DATA_INVALID', `ctc: ${message}`);
}

/** Validates shapes, lengths and labels once, naming the sample and position at fault. */
function check(shape: readonly number[], t: CtcTargets, blank: number): Checked {
  if (shape.length !== 3) invalid(`logits must be [B, T, C], got [${shape}]`);
  const [B, T, C] = shape;
  if (!Number.isInteger(blank) || blank < 0 || blank >= C) invalid(`blank ${blank} is not a class of C=${C}`);
  for (const [key, arr] of [['inputLengths', t.inputLengths], ['targetLengths', t.targetLengths]] as const) {
    if (arr.length !== B) invalid(`${key} has ${arr.length} entries for a batch of ${B}`);
  }
  if (B > 0 && t.targets.length % B !== 0) invalid(`targets has ${t.targets.length} entries, not a multiple of B=${B}`);
  const S = B > 0 ? t.targets.length / B : 0;
  const inputLengths = Array.from(t.inputLengths, Number);
  const targetLengths = Array.from(t.targetLengths, Number);
  const targets = Array.from(t.targets, Number);
  const feasible: boolean[] = [];
  for (let b = 0; b < B; b++) {
    const n = inputLengths[b];
    const s = targetLengths[b];
    if (!Number.isInteger(n) || n < 0 || n > T) invalid(`inputLengths[${b}] = ${n} is outside [0, T=${T}]`);
    if (!Number.isInteger(s) || s < 0 || s > S) invalid(`targetLengths[${b}] = ${s} is outside [0, S=${S}]`);
    const row = targets.slice(b * S, b * S + s);
    row.forEach((c, i) => {
      if (!Number.isInteger(c) || c < 0 || c >= C || c === blank) {
        invalid(`targets[${b}][${i}] = ${c} is not a label: use classes in [0, ${C}) other than the blank ${blank}`);
      }
    });
    feasible.push(minimumFrames(row) <= n);
  }
  return { B, T, C, S, blank, targets, targetLengths, inputLengths, feasible };
}

/**
 * Host CTC for a whole batch, float64 inside: per-sample negative log-likelihoods (+∞ where infeasible) and, when
 * asked, ∂loss_b/∂logits[b] (0 on padding frames and for infeasible samples). α and β both include the emission of
 * frame t, so ∂/∂z_tc = softmax_tc − Σ_{s: l'_s = c} α_t(s)β_t(s) / (y_tc · p(l|x)), taken in log space.
 */
export function ctcHost(
  logits: ArrayLike<number>, shape: readonly number[], t: CtcTargets, blank = 0, wantGrad = false,
): { loss: Float64Array; grad?: Float32Array } {
  const k = check(shape, t, blank);
  return ctcHostChecked(logits, k, wantGrad);
}

function ctcHostChecked(logits: ArrayLike<number>, k: Checked, wantGrad: boolean): { loss: Float64Array; grad?: Float32Array } {
  const { B, T, C, S } = k;
  const loss = new Float64Array(B);
  const grad = wantGrad ? new Float32Array(B * T * C) : undefined;
  const lp = new Float64Array(T * C);
  for (let b = 0; b < B; b++) {
    const n = k.inputLengths[b];
    const L = 2 * k.targetLengths[b] + 1;
    // Extended label sequence l' = (blank, l1, blank, l2, …, blank).
    const ext = new Int32Array(L).fill(k.blank);
    for (let s = 1; s < L; s += 2) ext[s] = k.targets[b * S + (s - 1) / 2];
    if (!k.feasible[b]) {
      loss[b] = Number.POSITIVE_INFINITY;
      continue;
    }
    if (n === 0) continue; // empty target over zero frames: p = 1
    // log-softmax per frame, float64
    const base = b * T * C;
    for (let f = 0; f < n; f++) {
      let m = NEG_INF;
      for (let c = 0; c < C; c++) m = Math.max(m, logits[base + f * C + c]);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(logits[base + f * C + c] - m);
      const z = m + Math.log(sum);
      for (let c = 0; c < C; c++) lp[f * C + c] = logits[base + f * C + c] - z;
    }
    const skip = (s: number): boolean => s >= 2 && ext[s] !== k.blank && ext[s] !== ext[s - 2];
    const alpha = new Float64Array(n * L).fill(NEG_INF);
    alpha[0] = lp[ext[0]];
    if (L > 1) alpha[1] = lp[ext[1]];
    for (let f = 1; f < n; f++) {
      const prev = (f - 1) * L;
      for (let s = 0; s < L; s++) {
        let a = alpha[prev + s];
        if (s >= 1) a = lse2(a, alpha[prev + s - 1]);
        if (skip(s)) a = lse2(a, alpha[prev + s - 2]);
        alpha[f * L + s] = a === NEG_INF ? NEG_INF : a + lp[f * C + ext[s]];
      }
    }
    const last = (n - 1) * L;
    const ll = L > 1 ? lse2(alpha[last + L - 1], alpha[last + L - 2]) : alpha[last];
    loss[b] = -ll;
    if (!grad) continue;
    const beta = new Float64Array(n * L).fill(NEG_INF);
    beta[last + L - 1] = lp[(n - 1) * C + ext[L - 1]];
    if (L > 1) beta[last + L - 2] = lp[(n - 1) * C + ext[L - 2]];
    for (let f = n - 2; f >= 0; f--) {
      const next = (f + 1) * L;
      for (let s = 0; s < L; s++) {
        let a = beta[next + s];
        if (s + 1 < L) a = lse2(a, beta[next + s + 1]);
        if (s + 2 < L && skip(s + 2)) a = lse2(a, beta[next + s + 2]);
        beta[f * L + s] = a === NEG_INF ? NEG_INF : a + lp[f * C + ext[s]];
      }
    }
    const lcab = new Float64Array(C);
    for (let f = 0; f < n; f++) {
      lcab.fill(NEG_INF);
      for (let s = 0; s < L; s++) lcab[ext[s]] = lse2(lcab[ext[s]], alpha[f * L + s] + beta[f * L + s]);
      const o = base + f * C;
      for (let c = 0; c < C; c++) {
        const l = lp[f * C + c];
        grad[o + c] = Math.exp(l) - (lcab[c] === NEG_INF ? 0 : Math.exp(lcab[c] - ll - l));
      }
    }
  }
  return { loss, grad };
}

// ---------------------------------------------------------------------------------------------------------------
// Fast path: two kernels (loss; gradient) on the host backends, registered on first use.

const LOSS_KERNEL = 'SigmaCtcLoss';
const GRAD_KERNEL = 'SigmaCtcLossGrad';
/** Backends whose tensors live in host memory: their kernels may read inputs directly. */
const HOST_BACKENDS = new Set(['cpu', 'wasm']);

interface CtcAttrs {
  targets: number[];
  targetLengths: number[];
  inputLengths: number[];
  blank: number;
}

type HostBackend = tf.KernelBackend & {
  makeTensorInfo?: (shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues) => tf.TensorInfo;
  makeOutput?: (shape: number[], dtype: tf.DataType, offset?: number, values?: tf.backend_util.BackendValues) => tf.TensorInfo;
};

function output(backendName: string, backend: tf.KernelBackend, shape: number[], values: Float32Array): tf.TensorInfo {
  const be = backend as HostBackend;
  // Same method names, different contracts: wasm's makeOutput takes (shape, dtype, offset, values), cpu's makeOutput
  // returns a Tensor, so cpu goes through makeTensorInfo.
  return backendName === 'wasm' ? be.makeOutput!(shape, 'float32', undefined, values) : be.makeTensorInfo!(shape, 'float32', values);
}

function hostRun(inputs: tf.NamedTensorInfoMap, backend: tf.KernelBackend, attrs: tf.NamedAttrMap | undefined, wantGrad: boolean) {
  const logits = inputs['logits'] as tf.TensorInfo;
  const a = attrs as unknown as CtcAttrs;
  const values = backend.readSync(logits.dataId) as Float32Array;
  return ctcHost(values, logits.shape, a, a.blank, wantGrad);
}

function registerFastKernels(backendName: string): void {
  if (tf.getKernel(LOSS_KERNEL, backendName) !== undefined) return;
  tf.registerKernel({
    kernelName: LOSS_KERNEL, backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { loss } = hostRun(inputs, backend as tf.KernelBackend, attrs, false);
      return output(backendName, backend as tf.KernelBackend, [loss.length], Float32Array.from(loss));
    },
  });
  tf.registerKernel({
    kernelName: GRAD_KERNEL, backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const logits = inputs['logits'] as tf.TensorInfo;
      const { grad } = hostRun(inputs, backend as tf.KernelBackend, attrs, true);
      return output(backendName, backend as tf.KernelBackend, [...logits.shape], grad!);
    },
  });
}

let gradientsRegistered = false;
function registerFastGradients(): void {
  if (gradientsRegistered) return;
  // ∂(Σ_b dy_b·loss_b)/∂logits = dy_b · G_b with G from the gradient kernel (α and β recomputed, as PyTorch's backward).
  tf.registerGradient({
    kernelName: LOSS_KERNEL, inputsToSave: ['logits'],
    gradFunc: (dy, saved, attrs) => {
      const [logits] = saved;
      return {
        logits: () => {
          const g = tf.engine().runKernel(GRAD_KERNEL, { logits }, attrs) as tf.Tensor;
          return tf.mul(g, tf.reshape(dy as tf.Tensor, [logits.shape[0], 1, 1]));
        },
      };
    },
  });
  tf.registerGradient({
    kernelName: GRAD_KERNEL, inputsToSave: [],
    gradFunc: () => {
      throw new SigmaError('SGT_CTC_SECOND_ORDER',
        "ctc: the fast CTC loss has no second derivative (its gradient is computed on the host); Hessian-vector " +
        "products (sharpness) must use ctcLoss(..., { impl: 'differentiable' })");
    },
  });
  gradientsRegistered = true;
}

function fastRaw(logits: tf.Tensor3D, k: Checked): tf.Tensor1D {
  const backendName = tf.getBackend();
  if (!HOST_BACKENDS.has(backendName)) return differentiableRaw(logits, k);
  registerFastKernels(backendName);
  registerFastGradients();
  const attrs: CtcAttrs = { targets: k.targets, targetLengths: k.targetLengths, inputLengths: k.inputLengths, blank: k.blank };
  return tf.engine().runKernel(LOSS_KERNEL, { logits }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

// ---------------------------------------------------------------------------------------------------------------
// Differentiable path: the α recursion in tfjs ops, twice differentiable with the project's gradient patches.

/**
 * A finite stand-in for log 0: unreachable states stay near −1e30 (exp underflows to exactly 0) and, unlike −∞, never
 * make ∞ − ∞ = NaN in logSumExp or its derivatives. Anything below −1e29 at the end means "no path".
 */
const LOG_ZERO = -1e30;

function differentiableRaw(logits: tf.Tensor3D, k: Checked): tf.Tensor1D {
  const { B, T, C, S, blank } = k;
  const L = 2 * S + 1;
  // Extended labels per sample [B, L] (padding positions repeat the blank: they sit past every sample's last state,
  // and transitions only go forward, so they never reach a state that is read).
  const extIdx = new Int32Array(B * L).fill(blank);
  const skipAdd = new Float32Array(B * L).fill(LOG_ZERO);
  const endAdd = new Float32Array(B * L).fill(LOG_ZERO);
  const init = new Float32Array(B * L).fill(LOG_ZERO);
  const onehot = new Float32Array(B * C * L);
  for (let b = 0; b < B; b++) {
    const Lb = 2 * k.targetLengths[b] + 1;
    for (let s = 1; s < Lb; s += 2) extIdx[b * L + s] = k.targets[b * S + (s - 1) / 2];
    for (let s = 0; s < L; s++) {
      const c = extIdx[b * L + s];
      onehot[b * C * L + c * L + s] = 1;
      if (s >= 2 && s < Lb && c !== blank && c !== extIdx[b * L + s - 2]) skipAdd[b * L + s] = 0;
    }
    endAdd[b * L + Lb - 1] = 0;
    if (Lb > 1) endAdd[b * L + Lb - 2] = 0;
    init[b * L] = 0; // a virtual frame −1 in the first blank: frame 0 then enters states 0 and 1
  }
  return tf.tidy(() => {
    const logp = logSoftmax(logits) as tf.Tensor3D; // [B, T, C]
    // Emission log-probabilities of every extended state: [B, T, C]·[B, C, L] → [B, T, L] (a product, no gather).
    const emit = tf.matMul(logp, tf.tensor3d(onehot, [B, C, L]));
    const frames = tf.unstack(emit, 1) as tf.Tensor2D[]; // T × [B, L]
    const skip = tf.tensor2d(skipAdd, [B, L]);
    const pad1 = tf.fill([B, 1], LOG_ZERO);
    const pad2 = tf.fill([B, 2], LOG_ZERO);
    let alpha: tf.Tensor2D = tf.tensor2d(init, [B, L]);
    for (let f = 0; f < T; f++) {
      // Frames past a sample's input length leave its α unchanged (mask 0).
      const live = k.inputLengths.map((n) => (f < n ? 1 : 0));
      if (!live.some((v) => v > 0)) break;
      const stay = alpha;
      const step = L > 1 ? tf.concat([pad1, tf.slice(alpha, [0, 0], [B, L - 1])], 1) : pad1;
      const jump = L > 2 ? tf.add(tf.concat([pad2, tf.slice(alpha, [0, 0], [B, L - 2])], 1), skip) : tf.fill([B, L], LOG_ZERO);
      const next = tf.add(tf.logSumExp(tf.stack([stay, step, jump], 2), 2), frames[f]) as tf.Tensor2D;
      // where, not α + m·(next − α): in float32, −1e30 + (next + 1e30) loses next entirely.
      const m = tf.tensor2d(live.flatMap((v) => new Array<number>(L).fill(v)), [B, L], 'bool');
      alpha = tf.where(m, next, alpha) as tf.Tensor2D;
    }
    return tf.neg(tf.logSumExp(tf.add(alpha, tf.tensor2d(endAdd, [B, L])), 1)) as tf.Tensor1D;
  });
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * CTC negative log-likelihood. Returns [B] for reduction 'none', else a scalar. Infeasible samples give +∞ (or 0 with
 * zeroInfinity); either way their gradient is 0 (PyTorch's is NaN without zeroInfinity; the loop fails fast on the
 * non-finite loss before any update). Bad lengths or labels throw SGT_DATA_INVALID naming the sample.
 * impl 'fast' runs on the cpu and wasm backends (host memory); elsewhere (tensorflow, webgpu) it takes the
 * differentiable path, which is correct on every backend.
 */
export function ctcLoss(logits: tf.Tensor3D, targets: CtcTargets, options: CtcOptions = {}): tf.Tensor {
  const reduction = options.reduction ?? 'mean';
  if (reduction !== 'none' && reduction !== 'sum' && reduction !== 'mean') {
    throw new SigmaError('SGT_CONFIG_INVALID', `ctc: reduction "${String(reduction)}" is not one of none, sum, mean`);
  }
  const impl = options.impl ?? 'fast';
  if (impl !== 'fast' && impl !== 'differentiable') {
    throw new SigmaError('SGT_CONFIG_INVALID', `ctc: impl "${String(impl)}" is not one of fast, differentiable`);
  }
  if (logits.dtype !== 'float32') invalid(`logits must be float32, got ${logits.dtype}`);
  const k = check(logits.shape, targets, options.blank ?? 0);
  return tf.tidy(() => {
    const raw = impl === 'fast' ? fastRaw(logits, k) : differentiableRaw(logits, k); // [B]
    const feasible = tf.tensor1d(k.feasible.map((f) => (f ? 1 : 0)), 'bool');
    const fill = tf.fill([k.B], options.zeroInfinity ? 0 : Number.POSITIVE_INFINITY);
    const perSample = tf.where(feasible, raw, fill) as tf.Tensor1D;
    switch (reduction) {
      case 'none':
        return perSample;
      case 'sum':
        return tf.sum(perSample);
      case 'mean': {
        const inv = tf.tensor1d(k.targetLengths.map((s) => 1 / Math.max(s, 1)));
        return tf.div(tf.sum(tf.mul(perSample, inv)), Math.max(k.B, 1));
      }
    }
  });
}
