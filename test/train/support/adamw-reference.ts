/** A float64 AdamW written from the paper, and the small problems the AdamW tests run it on. */
import { expect } from 'vitest';
import type { AdamWOptions } from '../../../src/train/adamw.ts';
import { Rng } from '../../../src/util/rng.ts';

/** float32 AdamW against the float64 reference: relative to the largest entry of each tensor. */
export const REL_TOL = 1e-6;

export interface Spec {
  readonly name: string;
  readonly shape: number[];
  readonly decay: boolean;
}

export const SPECS: Spec[] = [
  { name: 'blocks.0.up_l.weight', shape: [4, 3], decay: true },
  { name: 'blocks.0.norm.bias', shape: [5], decay: false },
  { name: 'blocks.0.R_i.weight', shape: [2, 2, 2], decay: true },
];

export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
export const f32 = (xs: ArrayLike<number>) => Float32Array.from(xs);

/** Initial values and per-step gradients, rounded to float32 so both implementations see the same inputs. */
export function problem(seed: number, steps: number, gradScale = 1) {
  const rng = new Rng(seed);
  const init = SPECS.map((s) => f32(Array.from({ length: size(s.shape) }, () => rng.normal())));
  const grads = Array.from({ length: steps }, (_, t) =>
    SPECS.map((s, i) => f32(Array.from({ length: size(s.shape) }, () => rng.normal() * gradScale * (1 + i) * (t % 2 ? 0.3 : 1)))),
  );
  return { init, grads };
}

/**
 * Plain float64 AdamW, written from the paper's algorithm (bias-corrected m_hat and v_hat,
 * decoupled decay p <- p - lr*wd*p) plus PyTorch's clip_grad_norm_ coefficient.
 */
export function referenceAdamW(init: Float32Array[], grads: Float32Array[][], lrs: number[], o: AdamWOptions) {
  const p = init.map((x) => Float64Array.from(x));
  const m = init.map((x) => new Float64Array(x.length));
  const v = init.map((x) => new Float64Array(x.length));
  const norms: number[] = [];
  const [b1, b2] = o.betas;
  grads.forEach((stepGrads, t0) => {
    const t = t0 + 1;
    const lr = lrs[t0];
    let sq = 0;
    for (const g of stepGrads) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    norms.push(norm);
    const clip = o.gradClip ?? 0;
    const coef = clip > 0 && clip / (norm + 1e-6) < 1 ? clip / (norm + 1e-6) : 1;
    stepGrads.forEach((graw, k) => {
      for (let i = 0; i < graw.length; i++) {
        const g = graw[i] * coef;
        if (SPECS[k].decay) p[k][i] -= lr * o.weightDecay * p[k][i];
        m[k][i] = b1 * m[k][i] + (1 - b1) * g;
        v[k][i] = b2 * v[k][i] + (1 - b2) * g * g;
        const mHat = m[k][i] / (1 - b1 ** t);
        const vHat = v[k][i] / (1 - b2 ** t);
        p[k][i] -= (lr * mHat) / (Math.sqrt(vHat) + o.eps);
      }
    });
  });
  return { p, m, v, norms };
}

export function expectRelClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string) {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(actual[i] - expected[i]));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  expect(actual.length, what).toBe(expected.length);
  expect(maxDiff / maxRef, `${what}: max diff ${maxDiff} against max ${maxRef}`).toBeLessThanOrEqual(REL_TOL);
}

