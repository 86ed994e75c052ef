import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { adamwStepsGpu, type AdamwHyper } from '../../../src/core/gpu/adamw.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();

/** PyTorch's AdamW in float64, the oracle. */
function reference(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number, h: AdamwHyper) {
  const out = { p: new Float64Array(p.length), m: new Float64Array(p.length), v: new Float64Array(p.length) };
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * h.gradScale;
    out.m[i] = h.b1 * m[i] + (1 - h.b1) * gi;
    out.v[i] = h.b2 * v[i] + (1 - h.b2) * gi * gi;
    const denom = Math.sqrt(out.v[i]) / Math.sqrt(1 - h.b2 ** t) + h.eps;
    out.p[i] = p[i] * (1 - h.lr * h.weightDecay) - (h.lr / (1 - h.b1 ** t)) * (out.m[i] / denom);
  }
  return out;
}

describe.skipIf(reason)(webgpuTitle('the fused AdamW kernels', reason), () => {
  // Three parameters of different sizes and decays: one dispatch for the first two, one for the third.
  it.each([
    ['decay and clipping, step 1', 1, { lr: 1e-2, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0.1, gradScale: 0.5 }],
    ['step 7, more elements than one row of workgroups', 7, { lr: 3e-4, b1: 0.8, b2: 0.95, eps: 1e-6, weightDecay: 0.05, gradScale: 1 }],
  ] as const)('matches the float64 update of each parameter (%s)', async (_label, t, h) => {
    await selectBackend('webgpu');
    const shapes = [[1031, 300], [3, 5], [7]] as const;
    const decays = [undefined, 0, 0.3];
    const rng = new Rng(t);
    const params = shapes.map((shape) => {
      const n = shape.reduce((a: number, b: number) => a * b, 1);
      const draw = (f: (x: number) => number) => Float32Array.from({ length: n }, () => f(rng.normal()));
      return { shape, arrays: [draw((x) => x), draw((x) => 0.1 * x), draw((x) => 0.01 * x), draw((x) => 1e-4 * x * x)] };
    });
    const got = tf.tidy(() =>
      adamwStepsGpu(
        params.map(({ shape, arrays }, j) => {
          const [p, g, m, v] = arrays.map((a) => tf.tensor(a, [...shape]));
          return { p, g, m, v, weightDecay: decays[j] };
        }),
        t,
        h,
      ),
    );
    for (const [j, { arrays }] of params.entries()) {
      const [p, g, m, v] = arrays;
      const want = reference(p, g, m, v, t, { ...h, weightDecay: decays[j] ?? h.weightDecay });
      expect(maxRelDiff(await got[j].m.data(), want.m)).toBeLessThan(1e-6);
      expect(maxRelDiff(await got[j].v.data(), want.v)).toBeLessThan(1e-6);
      // The update itself (p' - p) against the oracle's, so that a wrong small step cannot hide in p.
      const pNew = await got[j].p.data();
      expect(maxRelDiff(pNew.map((x, i) => x - p[i]), want.p.map((x, i) => x - p[i]))).toBeLessThan(1e-3);
    }
    tf.dispose(got.flatMap((r) => [r.p, r.m, r.v]));
  });
});
