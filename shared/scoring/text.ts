// Python str semantics that sacreBLEU's results depend on: what counts as whitespace (str.split/rstrip), code-point
// indexing (Python slices code points, JS strings are UTF-16), and the fixed-point formatting of `f"{x:.1f}"`.

/**
 * Python's str.isspace() set: JS `\s` minus U+FEFF, plus the separators U+001C–U+001F and NEL U+0085.
 * Kept as a source string so it can be composed into other patterns.
 */
const PY_SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const SPLIT_RE = new RegExp(`[${PY_SPACE}]+`, 'u');
const TRAILING_RE = new RegExp(`[${PY_SPACE}]+$`, 'u');

/** `s.split()` in Python: split on runs of whitespace, no empty strings. */
export function pySplit(s: string): string[] {
  const parts = s.split(SPLIT_RE);
  // split() gives an empty first/last part where s starts/ends with whitespace; Python drops them.
  return parts.filter((p) => p.length > 0);
}

/** `s.rstrip()` in Python. */
export function pyRstrip(s: string): string {
  return s.replace(TRAILING_RE, '');
}

/** `''.join(s.split())`: every whitespace character removed. */
export function removeWhitespace(s: string): string {
  return pySplit(s).join('');
}

/** The code points of s as one-character strings (a surrogate pair stays one element, as in Python). */
export function codePoints(s: string): string[] {
  return Array.from(s);
}

/**
 * Python's `f"{x:.{digits}f}"`: correctly rounded with ties to even on the exact binary value. JS toFixed rounds
 * exact ties away from zero (0.25.toFixed(1) is "0.3", Python gives "0.2"), so ties are detected and redone.
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const plain = x.toFixed(digits);
  if (digits >= 100) return plain;
  // toFixed(100) is the exact decimal expansion whenever x has ≤ 100 fractional bits, which covers every tie: a
  // double that sits exactly halfway between two `digits`-place decimals has at most digits+1 fractional bits.
  const exact = Math.abs(x).toFixed(100);
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(tail)) return plain;
  // Exact tie: keep the truncated value if its last digit is even, else step away from zero.
  const truncated = exact.slice(0, digits > 0 ? dot + 1 + digits : dot);
  const lastDigit = Number(truncated[truncated.length - 1]);
  // toFixed itself resolves a tie away from zero (the spec picks the larger n), which is right for an odd digit.
  const out = lastDigit % 2 === 0 ? truncated : Math.abs(x).toFixed(digits);
  const negative = x < 0 || Object.is(x, -0);
  return negative ? `-${out}` : out;
}
