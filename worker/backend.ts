// Chooses and starts the TensorFlow.js backend for a worker, and installs our kernel and gradient patches.
// 'tensorflow' (libtensorflow through tfjs-node[-gpu]) > 'wasm' (XNNPACK, one thread) > 'cpu' (plain JS).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { SigmaError } from '../shared/errors.js';
import { installGradientPatches, installKernelPatches } from './kernels/index.js';

export type BackendName = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendLog = (msg: string, fields?: Record<string, unknown>) => void;

// Not dependencies: their install downloads libtensorflow, which needs the internet (the GPU image has it).
const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const INSTALL_HINT =
  'Use the GPU Docker image (deploy/), or run `npm install @tensorflow/tfjs-node-gpu@4.22.0` ' +
  '(or @tensorflow/tfjs-node@4.22.0 for CPU) on a machine that can download libtensorflow; ' +
  'otherwise set `backend: wasm` (or `auto`).';

/** Tries tfjs-node-gpu, then tfjs-node. Returns the package that registered backend 'tensorflow', or why none did. */
async function loadTensorflow(): Promise<{ pkg?: string; errors: string[] }> {
  const errors: string[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    try {
      const specifier: string = pkg; // a plain string, so tsc does not look for the (absent) package's types
      await import(specifier);
      if (tf.findBackendFactory('tensorflow') != null) return { pkg, errors };
      errors.push(`${pkg}: loaded but registered no 'tensorflow' backend (is it version 4.22.x?)`);
    } catch (err) {
      errors.push(`${pkg}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { errors };
}

let wasmLoaded = false;
/** Registers the wasm backend and its kernels (dynamic import: registering it changes tfjs' default backend). */
async function loadWasm(): Promise<void> {
  if (wasmLoaded) return;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // Point at the .wasm binaries in node_modules explicitly (the package's own guess depends on how it is loaded).
  const dir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  if (existsSync(join(dir, 'tfjs-backend-wasm.wasm')) && tf.engine().registry['wasm'] === undefined) {
    wasm.setWasmPaths(dir + '/');
  }
  installKernelPatches('wasm');
  wasmLoaded = true;
}

async function activate(name: string): Promise<void> {
  installKernelPatches(name);
  let ok = false;
  let cause: unknown;
  try {
    ok = await tf.setBackend(name);
  } catch (err) {
    cause = err;
  }
  if (!ok) {
    throw new SigmaError('SGT_BACKEND_UNAVAILABLE',
      `backend "${name}" failed to initialize${cause ? `: ${(cause as Error).message}` : ''}. ${INSTALL_HINT}`,
      cause === undefined ? undefined : { cause });
  }
}

/**
 * Sets the tfjs backend and returns the active backend's name. 'auto' takes tensorflow if tfjs-node(-gpu) loads,
 * else wasm, else cpu, and logs which and why. Installs the gradient patches (all backends) and, when wasm is
 * loaded, the wasm kernel patches. Calling it again (same or another name) is fine.
 */
export async function initBackend(name: BackendName, log: BackendLog = () => {}): Promise<string> {
  installGradientPatches();
  switch (name) {
    case 'cpu':
      await activate('cpu');
      break;
    case 'wasm':
      await loadWasm();
      await activate('wasm');
      break;
    case 'tensorflow': {
      const { pkg, errors } = await loadTensorflow();
      if (pkg === undefined) {
        throw new SigmaError('SGT_BACKEND_UNAVAILABLE',
          `backend "tensorflow" needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither loads ` +
          `(${errors.join('; ')}). ${INSTALL_HINT}`);
      }
      await activate('tensorflow');
      break;
    }
    case 'auto': {
      const { pkg, errors } = await loadTensorflow();
      if (pkg !== undefined) {
        await activate('tensorflow');
        log('backend auto: tensorflow', { backend: 'tensorflow', package: pkg });
        break;
      }
      try {
        await loadWasm();
        await activate('wasm');
        log('backend auto: wasm (tfjs-node not available)', { backend: 'wasm', tensorflow: errors });
      } catch (err) {
        await activate('cpu');
        log('backend auto: cpu (neither tfjs-node nor wasm available)', {
          backend: 'cpu', tensorflow: errors, wasm: (err as Error).message,
        });
      }
      break;
    }
    default: {
      const never: never = name;
      throw new SigmaError('SGT_BACKEND_UNAVAILABLE',
        `unknown backend ${JSON.stringify(never)}: use auto, tensorflow, wasm or cpu`);
    }
  }
  return tf.getBackend();
}

export { GRADIENT_PATCHES, KERNEL_PATCHES } from './kernels/index.js';
