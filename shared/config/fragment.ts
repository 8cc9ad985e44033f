// Schema fragments and the type they describe: a fragment is a nested object of convict leaves ({doc, format,
// default}); ConfigOf<S> maps a fragment literal (`as const`) to the typed values loadConfig returns.
import type { FormatTypes } from './formats.js';

/** One key: its doc, a strict format (a registered name or an enumeration) and its default. */
export interface Leaf {
  readonly doc: string;
  readonly format: keyof FormatTypes | readonly string[];
  readonly default: unknown;
}

/** A nested group of keys (a section, a family, a data kind). */
export interface Fragment {
  readonly [key: string]: Leaf | Fragment;
}

/** The value type of one format: an enumeration is the union of its members. */
type ValueOf<F> = F extends readonly (infer U)[] ? U : F extends keyof FormatTypes ? FormatTypes[F] : never;

/** The typed config a fragment describes (mutable, as convict builds it; loadConfig freezes the result). */
export type ConfigOf<S> = {
  -readonly [K in keyof S]: S[K] extends { readonly doc: string; readonly format: infer F; readonly default: unknown } ? ValueOf<F> : ConfigOf<S[K]>;
};

export function isLeaf(node: unknown): node is Leaf {
  return typeof node === 'object' && node !== null && 'doc' in node && 'format' in node && 'default' in node;
}

/**
 * A section of keys every family shares plus one fragment per family under its name (model.vit.*, data.wmt.*).
 * Throws when a family's name is also a shared key: one of the two would silently hide the other.
 */
export function withFamilies<const C extends Fragment, const F extends Record<string, Fragment>>(section: string, shared: C, families: F): C & F {
  for (const name of Object.keys(families)) {
    if (name in shared) throw new Error(`config schema: ${section}.${name} is both a shared key and a family fragment`);
  }
  return { ...shared, ...families };
}
