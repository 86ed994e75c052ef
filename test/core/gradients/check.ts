/**
 * The oracle of the gradient tests: a vector-Jacobian product from tf.grads compared with central
 * finite differences of <dy, f(x)>, the contraction taken in float64 over f's float32 outputs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TEST_BACKENDS } from '../../support/backends.ts';

/** An input of a case: its shape and float32 values. */
export interface Input {
  shape: number[];
  values: number[];
}

export function normal(rng: Rng, shape: number[], scale = 1, shift = 0): Input {
  const n = shape.reduce((p, d) => p * d, 1);
  return { shape, values: Array.from({ length: n }, () => Math.fround(shift + scale * rng.normal())) };
}

export function uniform(rng: Rng, shape: number[], lo: number, hi: number): Input {
  const n = shape.reduce((p, d) => p * d, 1);
  return { shape, values: Array.from({ length: n }, () => Math.fround(lo + (hi - lo) * rng.uniform())) };
}

/** Values at least `gap` away from every point in `kinks`, so a finite difference never straddles one. */
export function awayFrom(rng: Rng, shape: number[], kinks: number[], gap = 0.1, scale = 1): Input {
  const n = shape.reduce((p, d) => p * d, 1);
  const values: number[] = [];
  while (values.length < n) {
    const v = Math.fround(scale * rng.normal());
    if (kinks.every((k) => Math.abs(v - k) >= gap)) values.push(v);
  }
  return { shape, values };
}

/** Distinct values spaced at least `gap` apart, in random order: reductions like max have no near-ties. */
export function spaced(rng: Rng, shape: number[], gap = 0.2): Input {
  const n = shape.reduce((p, d) => p * d, 1);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const values = order.map((r) => Math.fround((r - n / 2) * gap + 0.3 * gap * rng.uniform()));
  return { shape, values };
}

export interface CheckOptions {
  /** Finite-difference step; 1e-2 keeps float32 rounding of f small against the step. */
  eps?: number;
  /** Tolerance relative to the larger of 1 and |finite difference|. */
  tol?: number;
}

/** Runs fn and fails if it leaves tensors behind. */
export function expectNoLeak(fn: () => void): void {
  const before = tf.memory().numTensors;
  fn();
  expect(tf.memory().numTensors).toBe(before);
}

/**
 * Checks d<dy, f(xs)>/dxs from tf.grads against central differences, for a random dy.
 * Tolerance: with eps = 1e-2 the truncation error is eps^2/6 |phi'''|, and float32 rounding of the
 * outputs that x_i moves contributes up to 2^-24 * sum|dy| (|y+| + |y-|) / (2 eps), which is added
 * per element (4x, as the kernels' own rounding can exceed half an ulp); then 1e-3 relative to
 * max(1, |fd|) covers the truncation (at most 4e-4 over this suite's cases). So an element off by
 * a few times 1e-3 max(1, |g|) fails, let alone a wrong sign, factor, axis or broadcast reduction.
 */
export function checkGradient(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: Input[],
  rng: Rng,
  options: CheckOptions = {},
): void {
  const eps = options.eps ?? 1e-2;
  const tol = options.tol ?? 1e-3;
  expectNoLeak(() => {
    const xs = inputs.map((x) => tf.tensor(x.values, x.shape, 'float32'));
    const y = tf.tidy(() => f(...xs));
    const dyValues = Array.from({ length: y.size }, () => Math.fround(rng.normal()));
    const dy = tf.tensor(dyValues, y.shape, 'float32');
    const grads = tf.grads(f)(xs, dy);
    const analytic = grads.map((g) => Array.from(g.dataSync()));
    tf.dispose([...xs, y, dy, ...grads]);

    const outputs = (values: number[][]): Float32Array =>
      tf.tidy(() => f(...values.map((v, j) => tf.tensor(v, inputs[j].shape, 'float32'))).dataSync() as Float32Array);

    inputs.forEach((input, j) => {
      expect(analytic[j].length).toBe(input.values.length);
      for (let i = 0; i < input.values.length; i++) {
        const up = inputs.map((x) => x.values.slice());
        const down = inputs.map((x) => x.values.slice());
        up[j][i] = Math.fround(input.values[i] + eps);
        down[j][i] = Math.fround(input.values[i] - eps);
        const h = up[j][i] - down[j][i];
        const yUp = outputs(up);
        const yDown = outputs(down);
        // Outputs that x_i does not reach come out bitwise equal and cancel; each one it does reach
        // carries up to half an ulp of rounding at both points.
        let diff = 0;
        let rounding = 0;
        for (let k = 0; k < yUp.length; k++) {
          diff += dyValues[k] * (yUp[k] - yDown[k]);
          if (yUp[k] !== yDown[k]) rounding += Math.abs(dyValues[k]) * (Math.abs(yUp[k]) + Math.abs(yDown[k])) * 2 ** -24;
        }
        const fd = diff / h;
        const bound = tol * Math.max(1, Math.abs(fd)) + (4 * rounding) / h;
        const err = Math.abs(analytic[j][i] - fd);
        if (!(err <= bound)) {
          expect.fail(
            `gradient of input ${j} at ${i}: tf.grads gave ${analytic[j][i]}, finite difference ${fd} (|err| ${err} > ${bound})`,
          );
        }
      }
    });
  });
}

/** Checks a gradient whose value is known exactly (at a kink, or a tie), elementwise within 1e-6. */
export function checkExact(
  f: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: Input[],
  dyValues: number[] | null,
  expected: number[][],
): void {
  expectNoLeak(() => {
    const xs = inputs.map((x) => tf.tensor(x.values, x.shape, 'float32'));
    const y = tf.tidy(() => f(...xs));
    const dy = tf.tensor(dyValues ?? new Array(y.size).fill(1), y.shape, 'float32');
    const grads = tf.grads(f)(xs, dy);
    grads.forEach((g, j) => {
      const got = Array.from(g.dataSync());
      expect(got.length).toBe(expected[j].length);
      got.forEach((v, i) => expect(Math.abs(v - expected[j][i])).toBeLessThanOrEqual(1e-6));
    });
    tf.dispose([...xs, y, dy, ...grads]);
  });
}

/**
 * Declares the same tests once per test backend: selectBackend (which also registers the
 * gradients) runs before each block, so each block's tests run on its backend.
 */
export function describeOnBackends(title: string, body: () => void): void {
  for (const name of TEST_BACKENDS) {
    describe(`${title} [${name}]`, () => {
      beforeAll(async () => {
        await selectBackend(name);
        expect(tf.getBackend()).toBe(name);
      });
      body();
    });
  }
}
