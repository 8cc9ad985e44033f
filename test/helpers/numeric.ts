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
