// Checkpoint store without tfjs: safetensors files of plain typed arrays, atomic checkpoint directories, a background writer.
export * from './safetensors.js';
export * from './store.js';
