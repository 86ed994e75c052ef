import { describe, expect, it } from 'vitest';

import { erf, expClamped, expNonPositive, logSigmoid, logSumExpRow, logSumExpRowJs, sigmoid, silu, tanh } from '../../../src/core/host/math.ts';
import { logSumExp } from '../../../src/core/sampling.ts';
import { Rng } from '../../../src/util/rng.ts';

describe('expNonPositive', () => {
  it('matches Math.exp within 3e-15 relative over the fast range and exactly at its edges', () => {
    let worst = 0;
    for (let i = 0; i <= 200_000; i++) {
      // Dense steps plus an irrational offset, so table points and the points between them are both hit.
      const d = -i * 0.00025 - (i % 7) * Math.SQRT1_2 * 1e-6;
      worst = Math.max(worst, Math.abs(expNonPositive(d) - Math.exp(d)) / Math.exp(d));
    }
    expect(worst).toBeLessThan(3e-15);
    expect(expNonPositive(0)).toBe(1);
    expect(expNonPositive(-0)).toBe(1);
    // Outside the fast range it is Math.exp itself.
    for (const d of [-50, -60.5, -700, -Infinity, 0.5, NaN]) expect(expNonPositive(d)).toBe(Math.exp(d));
  });
});

describe('logSumExpRow', () => {
  const rng = new Rng(5);
  // Lengths around multiples of four put the maximum in the SIMD body and in the scalar tail.
  const row = (n: number, spread: number) => Float32Array.from({ length: n }, () => rng.normal() * spread);
  const rows = [1, 2, 3, 4, 5, 7, 8, 9, 5001, 50258].flatMap((n) => [0.1, 3, 30, 200].map((spread) => row(n, spread)));

  it('agrees with the exact log-sum-exp of core/sampling to 1e-7 (float32 exp, float64 sums) on rows of mixed spread and length', () => {
    for (const row of rows) {
      const exact = logSumExp(row);
      expect(Math.abs(logSumExpRow(row) - exact), `length ${row.length}`).toBeLessThan(1e-7 * Math.max(1, Math.abs(exact)));
    }
  });

  it('without SIMD agrees to 1e-14', () => {
    for (const row of rows) {
      const exact = logSumExp(row);
      expect(Math.abs(logSumExpRowJs(row) - exact)).toBeLessThan(1e-14 * Math.max(1, Math.abs(exact)));
    }
  });

  it('leaves out -Infinity entries (a suppressed token) and gives -Infinity for a row without mass', () => {
    const row = Float32Array.from([0.5, -Infinity, 2, -1, 1.5, -Infinity]);
    const want = Math.log(Math.exp(0.5) + Math.exp(2) + Math.exp(-1) + Math.exp(1.5));
    expect(Math.abs(logSumExpRow(row) - want)).toBeLessThan(1e-7);
    expect(Math.abs(logSumExpRowJs(row) - want)).toBeLessThan(1e-14);
    for (const f of [logSumExpRow, logSumExpRowJs]) {
      expect(f(Float32Array.from([-Infinity, -Infinity, -Infinity, -Infinity, -Infinity]))).toBe(-Infinity);
      expect(f(new Float32Array(0))).toBe(-Infinity);
    }
  });
});

describe('expClamped', () => {
  it('matches Math.exp within 3e-15 relative where activations live, 3e-14 out to the normal range, and gives 0, Infinity and NaN at the ends', () => {
    let near = 0;
    let far = 0;
    for (let x = -708; x <= 709; x += 0.0137) {
      const rel = Math.abs(expClamped(x) - Math.exp(x)) / Math.exp(x);
      if (Math.abs(x) <= 40) near = Math.max(near, rel);
      else far = Math.max(far, rel);
    }
    expect(near).toBeLessThan(3e-15);
    expect(far).toBeLessThan(3e-14);
    expect([expClamped(0), expClamped(-800), expClamped(-Infinity), expClamped(710), expClamped(Infinity)]).toEqual([1, 0, 0, Infinity, Infinity]);
    expect(expClamped(NaN)).toBeNaN();
  });
});

describe('tanh and silu', () => {
  it('match Math.tanh to 4e-16 absolute and x / (1 + e^-x) to 2e-15 relative', () => {
    for (let x = -30; x <= 30; x += 0.0071) {
      expect(Math.abs(tanh(x) - Math.tanh(x))).toBeLessThan(4e-16);
      const s = x / (1 + Math.exp(-x));
      expect(Math.abs(silu(x) - s)).toBeLessThanOrEqual(2e-15 * Math.abs(s));
    }
    expect([tanh(400), tanh(-400), silu(800), silu(-800)]).toEqual([1, -1, 800, -0]);
  });
});

describe('erf', () => {
  /** The oracle: composite Simpson's rule on erf' = 2/sqrt(pi) e^-t^2 (error below 1e-14 with 8000 panels). */
  function simpson(x: number): number {
    const f = (t: number) => (2 / Math.sqrt(Math.PI)) * Math.exp(-t * t);
    const n = 8000;
    const h = x / n;
    let sum = f(0) + f(x);
    for (let i = 1; i < n; i++) sum += (i % 2 === 1 ? 4 : 2) * f(i * h);
    return (sum * h) / 3;
  }

  it('matches the integral of its derivative to 2e-14 on both sides of the table/continued-fraction switch', () => {
    for (let x = -4.2; x <= 4.2; x += 0.0173) expect(Math.abs(erf(x) - simpson(x)), `x = ${x}`).toBeLessThan(2e-14);
    expect(erf(0)).toBe(0);
    expect(erf(7)).toBe(1);
    expect(erf(-7)).toBe(-1);
  });
});

describe('sigmoid and logSigmoid', () => {
  it('match their Math.exp forms to 1e-15 relative and stay finite far out', () => {
    for (let x = -40; x <= 40; x += 0.037) {
      const s = 1 / (1 + Math.exp(-x));
      expect(Math.abs(sigmoid(x) - s) / s).toBeLessThan(1e-14);
      expect(Math.abs(logSigmoid(x) - Math.log(s))).toBeLessThan(1e-14 * Math.max(1, Math.abs(Math.log(s))));
    }
    expect([sigmoid(800), sigmoid(-800), logSigmoid(800), logSigmoid(-800)]).toEqual([1, 0, -0, -800]);
  });
});
