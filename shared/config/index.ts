// Configuration entry point: the schema, the typed Config and its loader.
export { type Config, schema } from './schema.js';
export { loadConfig, configHash, configKeys, envName, PER_PROCESS_KEYS, type LoadOptions } from './load.js';
