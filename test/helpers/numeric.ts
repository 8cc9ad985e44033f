// Comparison helpers for numerical tests: norm-relative and element-wise checks with messages that locate the miss.
import assert from 'node:assert/strict';

export function flat(x: unknown): number[] {
  return Array.isArray(x) ? (x as unknown[]).flatMap(flat) : [x as number];
}

/** Asserts ‖a − b‖ ≤ rtol‖b‖ and every |aᵢ − bᵢ| ≤ rtol·max(|bᵢ|, max|b|). */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  let num = 0;
  let den = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
    const tol = rtol * Math.max(Math.abs(expected[i]), scale);
    assert.ok(Math.abs(d) <= tol || (scale === 0 && Math.abs(d) <= rtol), `${what}[${i}]: ${actual[i]} vs ${expected[i]} (|diff| ${Math.abs(d)} > ${tol})`);
  }
  if (den > 0) assert.ok(Math.sqrt(num / den) <= rtol, `${what}: relative error ${Math.sqrt(num / den)} > ${rtol}`);
}

export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

/** The largest |xᵢ| (0 for an empty vector). */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/**
 * The reference-vector rule (test/fixtures/README.md): every |aᵢ − bᵢ| ≤ rtol·|bᵢ| + atol. The absolute floor is what
 * lets an analytically zero entry pass: float64 noise (~1e-16) in the reference and fp32 noise (~1e-7) here.
 */
export function assertAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { rtol: number; atol: number }, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} ≠ ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const bound = tol.rtol * Math.abs(expected[i]) + tol.atol;
    const d = Math.abs(actual[i] - expected[i]);
    assert.ok(d <= bound, `${what}[${i}]: ${actual[i]} vs reference ${expected[i]}: |a−b| = ${d.toExponential(3)} > rtol·|b| + atol = ${bound.toExponential(3)} (rtol ${tol.rtol}, atol ${tol.atol.toExponential(3)})`);
  }
}
