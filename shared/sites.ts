// Attention sites on the wire and in the run log: per-head values of one attention ({attn, layer, heads}), and the
// per-kind [layer][head] view that metrics, the guard and the report use.

export type AttnKind = 'self' | 'causal' | 'cross';

export interface SiteHeads {
  attn: AttnKind;
  layer: number;
  heads: number[];
}

/** Sites of one attention kind as a [layer][head] matrix (missing layers are empty rows). */
export function byKind<T>(sites: readonly { attn: AttnKind; layer: number; heads: T[] }[], kind: AttnKind): T[][] {
  const out: T[][] = [];
  for (const s of sites) if (s.attn === kind) out[s.layer] = s.heads;
  return Array.from(out, (r) => r ?? []);
}
