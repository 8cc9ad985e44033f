// Kernel and gradient patches for tfjs 4.22, in one place: what is patched (tables) and how to install it.
export {
  GRADIENT_PATCHES, GRADIENT_PATCH_REASONS, GRADIENTS_LEFT_ALONE, SAVED_OUTPUT_KERNELS, installGradientPatches,
  restoreStockGradients,
} from './gradients.js';
export { KERNEL_PATCHES, installKernelPatches, stockKernel, type KernelPatch } from './kernel_patches.js';
export { logSoftmax, sparseSoftmaxCrossEntropy } from './ops.js';
