import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../../src/backend/select.ts';
import { hostView } from '../../../../src/core/host/io.ts';
import { keptIdsSimd, sampleTokenSimd } from '../../../../src/core/host/simd/sample-simd.ts';
import type { SamplingParams } from '../../../../src/core/sampling.ts';
import { Rng } from '../../../../src/util/rng.ts';

const MODES: SamplingParams[] = [
  { temperature: 0, topK: 0, topP: 1 },
  { temperature: 1, topK: 0, topP: 1 },
  { temperature: 0.6, topK: 0, topP: 1 },
  { temperature: 1, topK: 50, topP: 1 },
  { temperature: 1, topK: 700, topP: 1 },
  { temperature: 1, topK: 3000, topP: 0.9 },
  { temperature: 1, topK: 0, topP: 0.9 },
  { temperature: 1.4, topK: 0, topP: 0.5 },
  { temperature: 1, topK: 40, topP: 0.8 },
];

/** Equal element by element (NaN equal to NaN): a deep equality on 50k-long arrays would dominate the test's time. */
function same(a: ArrayLike<number> | null, b: ArrayLike<number> | null): boolean {
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

describe('the SIMD sampler', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('gives the same ids, log-probabilities and kept sets for rows in the wasm heap as for copies in JavaScript memory', () => {
    const rng = new Rng(31);
    const V = 50258;
    const values = Float32Array.from({ length: 3 * V }, (_, i) => (i % 97 === 0 ? -Infinity : Math.round(rng.normal() * 12) / 4));
    const t = tf.tensor2d(values, [3, V]);
    const heap = hostView(t) as Float32Array;
    expect(heap.buffer).not.toBe(values.buffer);
    // Offsetting the rows by one float moves them off 16-byte alignment in the heap too.
    for (const [r, offset] of [[0, 0], [1, 0], [1, 1], [2, 3]]) {
      const inHeap = heap.subarray(r * V + offset, (r + 1) * V);
      const before = inHeap.slice();
      const copy = values.slice(r * V + offset, (r + 1) * V);
      for (const p of MODES) {
        for (const u of [0, 0.37, 0.999]) expect(sampleTokenSimd(inHeap, p, u), JSON.stringify(p)).toEqual(sampleTokenSimd(copy, p, u));
        expect(same(keptIdsSimd(inHeap, p), keptIdsSimd(copy, p)), JSON.stringify(p)).toBe(true);
      }
      // Sampling reads the row and leaves it as it was.
      expect(same(inHeap, before)).toBe(true);
    }
    t.dispose();
  });
});
