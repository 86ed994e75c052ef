import { describe, expect, it } from 'vitest';

import { erf, expNonPositive, logSigmoid, logSumExpRow, sigmoid } from '../../../src/core/host/math.ts';
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
  it('agrees with the exact log-sum-exp of core/sampling to 1e-14 on rows of mixed spread', () => {
    const rng = new Rng(5);
    for (const spread of [0.1, 3, 30, 200]) {
      const row = Float32Array.from({ length: 5000 }, () => rng.normal() * spread);
      const exact = logSumExp(row);
      expect(Math.abs(logSumExpRow(row) - exact)).toBeLessThan(1e-14 * Math.max(1, Math.abs(exact)));
    }
  });

  it('leaves out -Infinity entries (a suppressed token) and gives -Infinity for a row without mass', () => {
    const row = Float32Array.from([0.5, -Infinity, 2, -1]);
    expect(logSumExpRow(row)).toBeCloseTo(Math.log(Math.exp(0.5) + Math.exp(2) + Math.exp(-1)), 14);
    expect(logSumExpRow(Float32Array.from([-Infinity, -Infinity]))).toBe(-Infinity);
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
