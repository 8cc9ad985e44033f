// Fused kernels for the Transformer layer, registered per backend (cpu, wasm): the σReparam power step, the linear
// (σReparam or plain) with its bias, GELU, LayerNorm, the attention core with its per-head entropy, and the largest
// token norm. Each is ONE kernel for the engine (forward) and one for its backward; the formulas (formulas.ts) run
// inside them as direct calls of the backend's kernels, and give the bits of the unfused composition.
//
// Gradients stay exact at second order: a fused kernel's registered gradient, when the tape is recording (a
// Hessian-vector product differentiates the backward), runs the backward formula as differentiable tfjs ops on the
// saved INPUTS only; otherwise (a training step) it runs the backward kernel, which also takes the intermediates the
// forward kernel returned as extra outputs (the sigmoid in GELU, x − μ in LayerNorm, logits and probabilities in
// attention), as autodiff would have kept them. Same formula, same kernels, same bits.
import * as tf from '@tensorflow/tfjs';

import {
  adamwFormula, attentionBackward, attentionForward, geluBackward, geluForward, layerNormBackward, layerNormForward,
  linearBackward, linearForward, maxRowNormFormula, powerStepFormula, type AdamWAttrs, type AttentionAttrs,
  type AttentionInputs, type LinearInputs,
} from './formulas.js';
import { KernelOps, tapeOps } from './ops.js';

/** Kernel names. The forward kernels come in variants by which inputs they have (the engine saves inputs by name). */
export const FUSED_KERNELS = {
  powerStep: 'SigmaPowerStep',
  linearGrad: 'FusedLinearGrad',
  gelu: 'FusedGelu',
  geluGrad: 'FusedGeluGrad',
  layerNorm: 'FusedLayerNorm',
  layerNormGrad: 'FusedLayerNormGrad',
  attentionGrad: 'FusedAttentionGrad',
  maxRowNorm: 'MaxRowNorm',
  adamw: 'FusedAdamW',
} as const;

/** The linear kernel for a σReparam (x, w, gamma, u, v) or plain (x, w) layer, with or without a bias b. */
export function linearKernelName(sigma: boolean, bias: boolean): string {
  return `FusedLinear${sigma ? 'Sigma' : ''}${bias ? 'Bias' : ''}`;
}

/** The attention kernel for joint (qkv) or separate (q, k, v) projections and 0–2 additive masks (mask1, mask2). */
export function attentionKernelName(joint: boolean, masks: number): string {
  return `FusedAttention${joint ? 'Joint' : 'Separate'}${masks}`;
}

const LINEAR_VARIANTS = [false, true].flatMap((sigma) => [false, true].map((bias) => ({ sigma, bias })));
const ATTENTION_VARIANTS = [false, true].flatMap((joint) => [0, 1, 2].map((masks) => ({ joint, masks })));

// On by default where registered: the same bits as the unfused path, ~4× fewer kernels per layer (bench:step).
let enabled = true;

/** Turns the fused kernels on (default) or off process-wide; off, nn/ runs the plain tfjs composition. */
export function setFusedKernels(on: boolean): void {
  enabled = on;
}

/** Whether nn/ should call the fused kernels: on, and registered for the active backend. */
export function fusedKernelsActive(): boolean {
  return enabled && tf.getKernel(FUSED_KERNELS.gelu, tf.getBackend()) !== undefined;
}

type Infos = Record<string, tf.TensorInfo | undefined>;

/** A kernel running `formula` on the backend's own kernels; its temporaries are freed, its outputs returned. */
function composite(backendName: string, formula: (o: KernelOps, inputs: Infos, attrs: tf.NamedAttrMap) => tf.TensorInfo[]): tf.KernelFunc {
  return ({ inputs, attrs, backend }) => {
    const o = new KernelOps(backend as tf.KernelBackend, backendName);
    let outs: tf.TensorInfo[] = [];
    try {
      outs = formula(o, inputs as Infos, attrs ?? {});
      return outs.length === 1 ? outs[0] : outs;
    } finally {
      o.release(outs);
    }
  };
}

const linearInputs = <T>(i: Record<string, T | undefined>): LinearInputs<T> =>
  ({ x: i['x']!, w: i['w']!, b: i['b'], gamma: i['gamma'], u: i['u'], v: i['v'] });
const attentionInputs = <T>(i: Record<string, T | undefined>): AttentionInputs<T> => ({
  qkv: i['qkv'], q: i['q'], k: i['k'], v: i['v'], mask1: i['mask1'], mask2: i['mask2'], queryMask: i['queryMask'],
});
const attentionAttrs = (a: tf.NamedAttrMap): AttentionAttrs => ({ heads: Number(a['heads']), scale: Number(a['scale']) });
const present = <T>(xs: Array<T | undefined>): T[] => xs.filter((x): x is T => x !== undefined);

function kernelsFor(backendName: string): Array<[string, tf.KernelFunc]> {
  const k = (f: (o: KernelOps, i: Infos, a: tf.NamedAttrMap) => tf.TensorInfo[]) => composite(backendName, f);
  return [
    [FUSED_KERNELS.powerStep, k((o, i, a) => powerStepFormula(o, i['w']!, i['u']!, Number(a['iterations'])))],
    ...LINEAR_VARIANTS.map(({ sigma, bias }): [string, tf.KernelFunc] =>
      [linearKernelName(sigma, bias), k((o, i) => [linearForward(o, linearInputs(i))])]),
    [FUSED_KERNELS.linearGrad, k((o, i, a) => present(linearBackward(o, i['dy']!, linearInputs(i), Boolean(a['bias']))))],
    [FUSED_KERNELS.gelu, k((o, i) => geluForward(o, i['x']!))],
    [FUSED_KERNELS.geluGrad, k((o, i) => [geluBackward(o, i['dy']!, i['x']!, i['s'])])],
    [FUSED_KERNELS.layerNorm, k((o, i, a) => layerNormForward(o, i['x']!, i['scale']!, i['shift']!, Number(a['eps'])))],
    [FUSED_KERNELS.layerNormGrad, k((o, i, a) => layerNormBackward(o, i['dy']!, i['x']!, i['scale']!, Number(a['eps']), [i['xc']!, i['ve']!]))],
    ...ATTENTION_VARIANTS.map(({ joint, masks }): [string, tf.KernelFunc] =>
      [attentionKernelName(joint, masks), k((o, i, a) => attentionForward(o, attentionInputs(i), attentionAttrs(a)))]),
    [FUSED_KERNELS.attentionGrad, k((o, i, a) => attentionBackward(o, i['dy']!, attentionInputs(i), attentionAttrs(a), [i['logits']!, i['probs']!]))],
    [FUSED_KERNELS.maxRowNorm, k((o, i) => [maxRowNormFormula(o, i['x']!)])],
    [FUSED_KERNELS.adamw, k((o, i, a) => adamwFormula(o, i['p']!, i['g']!, i['m']!, i['v']!, a as unknown as AdamWAttrs))],
  ];
}

/** True while the engine records ops for a gradient (then a backward must be made of differentiable ops). */
function tapeRecording(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}

/**
 * The backward of a fused kernel: the formula as differentiable ops when the tape records (Hessian-vector
 * products), else the backward kernel. `names`: the inputs the gradients belong to, in the formula's output order.
 */
function backward(
  gradKernel: string, names: string[], saved: Record<string, tf.Tensor | undefined>, attrs: tf.NamedAttrMap,
  asOps: () => Array<tf.Tensor | undefined>,
): Record<string, () => tf.Tensor> {
  let grads: Array<tf.Tensor | undefined>;
  if (tapeRecording()) {
    grads = tf.tidy(asOps);
  } else {
    const inputs = Object.fromEntries(Object.entries(saved).filter(([, t]) => t !== undefined)) as tf.NamedTensorMap;
    const out = tf.engine().runKernel(gradKernel, inputs, attrs);
    grads = Array.isArray(out) ? out : [out as tf.Tensor];
  }
  const map: Record<string, () => tf.Tensor> = {};
  let j = 0;
  for (const n of names) {
    const g = grads[j++];
    if (g !== undefined) map[n] = () => g;
  }
  return map;
}

const zerosLike = (t: tf.Tensor) => () => tf.zeros(t.shape);

function linearGradient(sigma: boolean, bias: boolean): tf.GradConfig {
  const inputsToSave = sigma ? ['x', 'w', 'gamma', 'u', 'v'] : ['x', 'w'];
  return {
    kernelName: linearKernelName(sigma, bias), inputsToSave,
    gradFunc: (dy, saved) => {
      const p = Object.fromEntries(inputsToSave.map((n, i) => [n, saved[i]])) as Record<string, tf.Tensor>;
      const names = present(['x', 'w', sigma ? 'gamma' : undefined, bias ? 'b' : undefined]);
      const grads = backward(FUSED_KERNELS.linearGrad, names, { dy: dy as tf.Tensor, ...p }, { bias },
        () => present(linearBackward(tapeOps, dy as tf.Tensor, linearInputs(p), bias)));
      if (sigma) Object.assign(grads, { u: zerosLike(p['u']), v: zerosLike(p['v']) }); // power-step buffers: constants
      return grads;
    },
  };
}

function attentionGradient(joint: boolean, masks: number): tf.GradConfig {
  const inputsToSave = [...(joint ? ['qkv'] : ['q', 'k', 'v']), ...['mask1', 'mask2'].slice(0, masks)];
  return {
    // Outputs [y, entropy, logits, probs]: the last two are kept for the backward kernel.
    kernelName: attentionKernelName(joint, masks), inputsToSave, outputsToSave: [false, false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const dy = (dys as tf.Tensor[])[0]; // only y's gradient flows: the entropy (second output) is a diagnostic
      const p = Object.fromEntries(inputsToSave.map((n, i) => [n, saved[i]])) as Record<string, tf.Tensor>;
      const [logits, probs] = saved.slice(inputsToSave.length);
      const grads = backward(FUSED_KERNELS.attentionGrad, joint ? ['qkv'] : ['q', 'k', 'v'], { dy, ...p, logits, probs }, attrs,
        () => attentionBackward(tapeOps, dy, attentionInputs(p), attentionAttrs(attrs)));
      for (const m of inputsToSave.slice(joint ? 1 : 3)) grads[m] = zerosLike(p[m]); // masks: constants
      return grads;
    },
  };
}

function gradients(): tf.GradConfig[] {
  return [
    ...LINEAR_VARIANTS.map(({ sigma, bias }) => linearGradient(sigma, bias)),
    ...ATTENTION_VARIANTS.map(({ joint, masks }) => attentionGradient(joint, masks)),
    {
      // Outputs [y, s = σ(·)]: s is kept for the backward kernel.
      kernelName: FUSED_KERNELS.gelu, inputsToSave: ['x'], outputsToSave: [false, true],
      gradFunc: (dys, [x, s], attrs) => {
        const dy = (dys as tf.Tensor[])[0];
        return backward(FUSED_KERNELS.geluGrad, ['x'], { dy, x, s }, attrs, () => [geluBackward(tapeOps, dy, x)]);
      },
    },
    {
      // Outputs [y, x − μ, var + ε]: the last two are kept for the backward kernel.
      kernelName: FUSED_KERNELS.layerNorm, inputsToSave: ['x', 'scale'], outputsToSave: [false, true, true],
      gradFunc: (dys, [x, scale, xc, ve], attrs) => {
        const dy = (dys as tf.Tensor[])[0];
        return backward(FUSED_KERNELS.layerNormGrad, ['x', 'scale', 'shift'], { dy, x, scale, xc, ve }, attrs,
          () => layerNormBackward(tapeOps, dy, x, scale, Number(attrs['eps'])));
      },
    },
    // A diagnostic (Theorem 3.1's token norm): no gradient, like a value read off the tape.
    { kernelName: FUSED_KERNELS.maxRowNorm, inputsToSave: [], gradFunc: () => ({}) },
  ];
}

const installedFor = new Set<string>();

/** Registers the fused kernels for 'cpu' or 'wasm' (idempotent), and their gradients (global, once). */
export function installFusedKernels(backendName: string): void {
  if (installedFor.has(backendName)) return;
  if (installedFor.size === 0) for (const g of gradients()) tf.registerGradient(g);
  for (const [kernelName, kernelFunc] of kernelsFor(backendName)) {
    if (tf.getKernel(kernelName, backendName) === undefined) tf.registerKernel({ kernelName, backendName, kernelFunc });
  }
  installedFor.add(backendName);
}
