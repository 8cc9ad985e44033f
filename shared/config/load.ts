// Loads the configuration once, at the edge: defaults < file (YAML or JSON) < SIGMATRAIN_* env < --key args.
// Validation is strict (unknown keys, NaN, wrong types fail naming the key); the result is deeply frozen.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import convict from 'convict';
import YAML from 'yaml';
import { SigmaError } from '../errors.js';
import { registerFormats } from './formats.js';
import { checkConfig } from './checks.js';
import { schema, type Config } from './schema.js';
import { isLeaf, type Fragment } from './fragment.js';
import { IMAGE_KINDS } from './datasets/images.js';
import { RENAMED, renamedIn, renamedTo, showRenamed } from './renamed.js';

type SchemaNode = Fragment;

/** Every leaf key path of the schema, e.g. "data.root". */
export function configKeys(node: SchemaNode = schema as unknown as SchemaNode, prefix = ''): string[] {
  const keys: string[] = [];
  for (const [k, v] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (isLeaf(v)) keys.push(path);
    else keys.push(...configKeys(v as SchemaNode, path));
  }
  return keys;
}

/** data.root → SIGMATRAIN_DATA_ROOT; model.vit.imageSize → SIGMATRAIN_MODEL_VIT_IMAGE_SIZE. */
export function envName(key: string): string {
  return 'SIGMATRAIN_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase();
}

/** Schema copy with env and arg bindings on every leaf, so every key can be overridden without listing it twice. */
function withBindings(node: SchemaNode, prefix = ''): SchemaNode {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${k}` : k;
    out[k] = isLeaf(v) ? { ...v, env: envName(path), arg: path } : withBindings(v as SchemaNode, path);
  }
  return out as SchemaNode;
}

/** The value of --key in CLI args (`--key v` or `--key=v`), if given. */
function argValue(args: readonly string[], key: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${key}`) return args[i + 1];
    if (args[i].startsWith(`--${key}=`)) return args[i].slice(key.length + 3);
  }
  return undefined;
}

/** data.kind as the sources set it (args > env > overrides > file > default): names a renamed key's new home. */
function configuredKind(file: unknown, opts: LoadOptions, env: NodeJS.ProcessEnv, args: readonly string[]): string {
  const fromObject = (o: unknown) => ((o as { data?: { kind?: unknown } } | undefined)?.data?.kind);
  const kind = argValue(args, 'data.kind') ?? env[envName('data.kind')] ?? fromObject(opts.overrides) ?? fromObject(file);
  return typeof kind === 'string' ? kind : schema.data.kind.default;
}

/** SIGMATRAIN_* names of every old key (renamed prefixes expanded over the keys now under them) → the old key. */
function oldEnvNames(keys: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [old, now] of Object.entries(RENAMED)) {
    for (const prefix of now.includes('<kind>') ? IMAGE_KINDS.map((k) => now.replace('<kind>', k)) : [now]) {
      for (const key of keys) {
        if (key === prefix || key.startsWith(prefix + '.')) out.set(envName(old + key.slice(prefix.length)), old + key.slice(prefix.length));
      }
    }
  }
  return out;
}

/** Throws SGT_CONFIG_INVALID naming every renamed key a source still uses, with its new name, grouped by source. */
function rejectRenamed(file: unknown, opts: LoadOptions, env: NodeJS.ProcessEnv, args: readonly string[], keys: readonly string[]): void {
  const kind = configuredKind(file, opts, env, args);
  const groups: [string, string[]][] = [];
  if (opts.file) groups.push([`config file ${opts.file}`, renamedIn(file, kind)]);
  groups.push(['overrides', renamedIn(opts.overrides, kind)]);
  const oldEnv = oldEnvNames(keys);
  const inEnv: string[] = [];
  for (const name of Object.keys(env)) {
    const old = oldEnv.get(name);
    if (old) inEnv.push(`${name} (${old}) was renamed to ${showRenamed(renamedTo(old, kind)!, envName)}`);
  }
  groups.push(['environment', inEnv]);
  const inArgs: string[] = [];
  for (const a of args) {
    if (!a.startsWith('--')) continue;
    const key = a.slice(2).split('=')[0];
    const now = renamedTo(key, kind);
    if (now) inArgs.push(`--${key} was renamed to ${showRenamed(now, (k) => `--${k}`)}`);
  }
  groups.push(['flags', inArgs]);
  const found = groups.filter(([, items]) => items.length > 0);
  if (found.length) {
    throw new SigmaError('SGT_CONFIG_INVALID', `renamed config keys (a family's keys now live under model.<family>, a dataset's under data.<kind>): ${
      found.map(([where, items]) => `${where}: ${items.join(', ')}`).join('; ')}`);
  }
}

function parseFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SigmaError('SGT_CONFIG_FILE', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const value = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text, { strict: true, uniqueKeys: true });
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error('the top level must be a mapping of keys');
    return value;
  } catch (err) {
    throw new SigmaError('SGT_CONFIG_FILE', `config file ${file} does not parse: ${(err as Error).message}`, { cause: err });
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export interface LoadOptions {
  file?: string;
  /** Config overrides as CLI flags: ["--data.root", "/x", "--train.epochs=3"]. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Plain object overrides applied after the file (used by tests and the launcher). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  registerFormats();
  const keys = new Set(configKeys());
  const env = opts.env ?? process.env;
  const args = opts.args ?? [];
  const file = opts.file ? parseFile(opts.file) : undefined;
  rejectRenamed(file, opts, env, args, [...keys]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('SIGMATRAIN_') && ![...keys].some((k) => envName(k) === name)) {
      throw new SigmaError('SGT_CONFIG_INVALID', `unknown environment variable ${name}: no config key maps to it (keys: see README, e.g. SIGMATRAIN_DATA_ROOT)`);
    }
  }
  const seen = new Set<string>();
  for (const a of args) {
    if (!a.startsWith('--')) continue;
    const key = a.slice(2).split('=')[0];
    if (!keys.has(key)) throw new SigmaError('SGT_CONFIG_INVALID', `unknown config flag --${key}: no such key (see README's configuration table)`);
    if (seen.has(key)) throw new SigmaError('SGT_CONFIG_INVALID', `config flag --${key} is given twice: give it once`);
    seen.add(key);
  }
  const conf = convict(withBindings(schema as unknown as SchemaNode) as never, { env: env as Record<string, string>, args });
  const where = opts.file ?? 'defaults';
  try {
    if (file) conf.load(file as never);
    if (opts.overrides) conf.load(opts.overrides as never);
    conf.validate({ allowed: 'strict' });
    checkConfig(conf.getProperties() as unknown as Config);
  } catch (err) {
    if (err instanceof SigmaError) throw err;
    const msg = (err as Error).message.split('\n').filter(Boolean).join('; ');
    throw new SigmaError('SGT_CONFIG_INVALID', `invalid configuration (${where}): ${msg}`, { cause: err });
  }
  return deepFreeze(conf.getProperties() as unknown as Config);
}

/**
 * Keys that legitimately differ between the processes of one job (where this process is, how it reaches others,
 * where its copy of the data is mounted, how it logs) and so stay out of the job's config hash.
 */
export const PER_PROCESS_KEYS: readonly string[] = [
  'dist.coordinator', 'dist.ringHost', 'dist.ringPortBase', 'dist.transport', 'data.root', 'data.imagenet.threads', 'data.imagenet.prefetch',
  'metrics.enabled', 'metrics.port', 'metrics.host', 'log.level',
];

/** Stable hash of the job's config: workers with a different hash are refused by the coordinator. */
export function configHash(config: Readonly<Config>): string {
  const canon = (v: unknown, path: string): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .filter((k) => !PER_PROCESS_KEYS.includes(path ? `${path}.${k}` : k))
            .map((k) => [k, canon((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k)]),
        )
      : v;
  return createHash('sha256').update(JSON.stringify(canon(config, ''))).digest('hex').slice(0, 16);
}
