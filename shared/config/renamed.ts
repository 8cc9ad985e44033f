// Keys that moved when the schema was split by family (issue 10 item 8): an old key in a file, a flag, an override or
// the environment is an error naming its new name, so an old config never silently trains a default model.
import { IMAGE_KINDS } from './datasets/images.js';

/** Old key (or key prefix) → new key; `<kind>` is the image kind the config selects (data.kind). */
export const RENAMED: Readonly<Record<string, string>> = {
  'model.variant': 'model.vit.variant',
  'model.imageSize': 'model.vit.imageSize',
  'model.patchSize': 'model.vit.patchSize',
  'model.patchInitGain': 'model.vit.patchInitGain',
  'model.posEmb': 'model.vit.posEmb',
  'model.pool': 'model.vit.pool',
  'model.dropPath': 'model.vit.dropPath',
  'data.numClasses': 'data.<kind>.numClasses',
  'data.mean': 'data.<kind>.mean',
  'data.std': 'data.<kind>.std',
  'data.valLabels': 'data.imagenet.valLabels',
  'data.interpolation': 'data.imagenet.interpolation',
  'data.evalCropPct': 'data.imagenet.evalCropPct',
  'data.augment': 'data.imagenet.augment',
  'data.mix': 'data.imagenet.mix',
  'data.repeats': 'data.imagenet.repeats',
  'data.threads': 'data.imagenet.threads',
  'data.prefetch': 'data.imagenet.prefetch',
};

/**
 * The new name(s) of `key` if it (or a key it sits under, e.g. data.augment.hflip) was renamed, else null. `kind` is
 * the configured data.kind: the keys every image kind has go under it, or all three are listed when it is no image kind.
 */
export function renamedTo(key: string, kind: string): string[] | null {
  for (const [old, now] of Object.entries(RENAMED)) {
    if (key !== old && !key.startsWith(old + '.')) continue;
    const moved = now + key.slice(old.length);
    if (!moved.includes('<kind>')) return [moved];
    if ((IMAGE_KINDS as readonly string[]).includes(kind)) return [moved.replace('<kind>', kind)];
    return IMAGE_KINDS.map((k) => moved.replace('<kind>', k));
  }
  return null;
}

/** "a" or "a / b / c (by data.kind)", each name passed through `show` (e.g. as a flag or an environment variable). */
export function showRenamed(names: readonly string[], show: (key: string) => string = (k) => k): string {
  return names.map(show).join(' / ') + (names.length > 1 ? ' (by data.kind)' : '');
}

/** Renamed keys in a nested config object (a file or overrides), as "old was renamed to new" lines. */
export function renamedIn(value: unknown, kind: string, prefix = ''): string[] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const now = renamedTo(path, kind);
    if (now) out.push(`${path} was renamed to ${showRenamed(now)}`);
    else out.push(...renamedIn(v, kind, path));
  }
  return out;
}
