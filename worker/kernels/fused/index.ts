// Fused ops with hand-written, twice-differentiable gradients: what nn/ calls when the fused ops are on.
export { fusedOpsEnabled, setFusedOps, untaped } from './common.js';
export { attentionCore, type AttentionCoreOptions, type AttentionCoreOutput } from './attention.js';
export { softmaxCrossEntropySum } from './cross_entropy.js';
export { gelu } from './gelu.js';
export { layerNorm } from './layernorm.js';
export { linear, sigmaLinear } from './linear.js';
