// Configuration entry point: the schema, the typed Config and its loader.
export { type Config, schema } from './schema.js';
export { loadConfig, configHash, configKeys, envName, type LoadOptions } from './load.js';
