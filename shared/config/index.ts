// Configuration entry point: the schema (assembled from per-family fragments), the typed Config and its loader.
export { type Config, schema, MODEL_FAMILIES, DATA_KINDS } from './schema.js';
export { loadConfig, configHash, configKeys, envName, PER_PROCESS_KEYS, type LoadOptions } from './load.js';
export { activeImageData, IMAGE_KINDS, type ImageData, type ImageKind } from './datasets/images.js';
export { RENAMED } from './renamed.js';
