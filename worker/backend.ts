// Chooses and starts the TensorFlow.js backend for a worker, and installs our kernel and gradient patches.
// 'tensorflow' (libtensorflow through tfjs-node[-gpu]) > 'webgpu' (Dawn on a real GPU adapter) > 'wasm' (XNNPACK,
// one thread) > 'cpu' (plain JS).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { SigmaError } from '../shared/errors.js';
import { installGradientPatches, installKernelPatches } from './kernels/index.js';
import { installFusedKernels } from './kernels/composite/index.js';

export type BackendName = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
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

/** What Dawn reports of the adapter the webgpu backend runs on (logged, so each worker shows which GPU it got). */
export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  fallback: boolean;
}

/** Adapters that are software rasterisers: never picked, because training on them is slower than wasm. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|warp|cpu/i;

const WEBGPU_HINT =
  'The webgpu backend needs the optional npm packages `webgpu` and `@tensorflow/tfjs-backend-webgpu` and a real GPU ' +
  'with a Vulkan driver (libvulkan1 and the vendor ICD, e.g. /usr/share/vulkan/icd.d/nvidia_icd.json); otherwise set ' +
  '`backend: wasm` (or `auto`).';

/** The part of Dawn's navigator.gpu used here (the package is optional, so its types are not required to build). */
interface DawnGpu {
  requestAdapter(o?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<{
    info: { vendor: string; architecture: string; device: string; description: string };
    isFallbackAdapter?: boolean;
  } | null>;
}

let webgpuAdapter: GpuAdapterInfo | undefined;
/**
 * Creates Dawn's navigator.gpu, checks that it offers a hardware adapter, then imports tfjs-backend-webgpu (which
 * registers itself at import time only if navigator.gpu exists then). Returns the adapter, or why there is none.
 * `adapterName` (Dawn's `adapter=` flag: a substring of the adapter's name) picks one GPU of several.
 */
async function loadWebgpu(adapterName?: string): Promise<{ adapter?: GpuAdapterInfo; error?: string }> {
  if (webgpuAdapter !== undefined) return { adapter: webgpuAdapter };
  // Without a Vulkan loader Dawn finds nothing on Linux, and says so on stderr at every start: don't ask it.
  if (process.platform === 'linux' && !vulkanLoaderPresent()) {
    return { error: 'no Vulkan loader (libvulkan.so.1) on this machine, so no GPU adapter can be found' };
  }
  let dawn: { create(flags: string[]): DawnGpu; globals: Record<string, unknown> };
  try {
    const specifier: string = 'webgpu'; // optional dependency: a plain string, so tsc does not require its types
    dawn = await import(specifier);
  } catch (err) {
    return { error: `the npm package webgpu does not load (${(err as Error).message.split('\n')[0]})` };
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create(adapterName ? [`adapter=${adapterName}`] : []);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter === null) {
    return { error: 'Dawn found no WebGPU adapter (no GPU, or no Vulkan loader/driver visible to this process)' };
  }
  const i = adapter.info;
  const info: GpuAdapterInfo = {
    vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    fallback: adapter.isFallbackAdapter === true,
  };
  if (isSoftwareAdapter(info)) {
    return { error: `the only WebGPU adapter is a software one (${describeAdapter(info)}), which is slower than wasm` };
  }
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    return { error: `@tensorflow/tfjs-backend-webgpu does not load (${(err as Error).message.split('\n')[0]})` };
  }
  if (tf.findBackendFactory('webgpu') == null) {
    return { error: '@tensorflow/tfjs-backend-webgpu loaded but registered no webgpu backend' };
  }
  webgpuAdapter = info;
  return { adapter: info };
}

/** libvulkan.so.1 in LD_LIBRARY_PATH or the usual library folders (what the dynamic linker would search). */
function vulkanLoaderPresent(): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu',
    '/usr/lib64', '/usr/lib', '/lib64', '/lib', '/usr/local/lib',
  ];
  return dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')));
}

/** True for adapters that are software rasterisers (lavapipe, SwiftShader, WARP), which the backend refuses. */
export function isSoftwareAdapter(a: GpuAdapterInfo): boolean {
  return a.fallback || SOFTWARE_ADAPTER.test(`${a.vendor} ${a.architecture} ${a.device} ${a.description}`);
}

export function describeAdapter(a: GpuAdapterInfo): string {
  return [a.vendor, a.architecture, a.device, a.description].filter((s) => s !== '').join(' / ') || 'unnamed adapter';
}

/** The GPU adapter the webgpu backend runs on, once initBackend has chosen webgpu. */
export function activeAdapter(): GpuAdapterInfo | undefined {
  return tf.getBackend() === 'webgpu' ? webgpuAdapter : undefined;
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
  if (name === 'cpu' || name === 'wasm') installFusedKernels(name);
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
 * else webgpu if Dawn offers a hardware GPU adapter, else wasm, else cpu, and logs which and why. Installs the gradient patches (all backends) and, when wasm is
 * loaded, the wasm kernel patches. Calling it again (same or another name) is fine.
 */
export async function initBackend(name: BackendName, log: BackendLog = () => {}, gpu?: { adapter?: string }): Promise<string> {
  installGradientPatches();
  switch (name) {
    case 'cpu':
      await activate('cpu');
      break;
    case 'wasm':
      await loadWasm();
      await activate('wasm');
      break;
    case 'webgpu': {
      const { adapter, error } = await loadWebgpu(gpu?.adapter);
      if (adapter === undefined) {
        throw new SigmaError('SGT_BACKEND_UNAVAILABLE', `backend "webgpu": ${error}. ${WEBGPU_HINT}`);
      }
      await activate('webgpu');
      log(`backend webgpu: ${describeAdapter(adapter)}`, { backend: 'webgpu', adapter });
      break;
    }
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
      const webgpu = await loadWebgpu(gpu?.adapter);
      if (webgpu.adapter !== undefined) {
        await activate('webgpu');
        log(`backend auto: webgpu on ${describeAdapter(webgpu.adapter)} (tfjs-node not available)`, {
          backend: 'webgpu', adapter: webgpu.adapter, tensorflow: errors,
        });
        break;
      }
      try {
        await loadWasm();
        await activate('wasm');
        log('backend auto: wasm (neither tfjs-node nor a WebGPU adapter available)', {
          backend: 'wasm', tensorflow: errors, webgpu: webgpu.error,
        });
      } catch (err) {
        await activate('cpu');
        log('backend auto: cpu (neither tfjs-node, a WebGPU adapter nor wasm available)', {
          backend: 'cpu', tensorflow: errors, webgpu: webgpu.error, wasm: (err as Error).message,
        });
      }
      break;
    }
    default: {
      const never: never = name;
      throw new SigmaError('SGT_BACKEND_UNAVAILABLE',
        `unknown backend ${JSON.stringify(never)}: use auto, tensorflow, webgpu, wasm or cpu`);
    }
  }
  return tf.getBackend();
}

export { GRADIENT_PATCHES, KERNEL_PATCHES } from './kernels/index.js';
