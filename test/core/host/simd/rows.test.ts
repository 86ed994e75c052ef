import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../../src/backend/select.ts';
import { hostView } from '../../../../src/core/host/io.ts';
import { argMaxSimd, logSumExpSimd } from '../../../../src/core/host/simd/rows.ts';
import { logSumExp } from '../../../../src/core/sampling.ts';
import { Rng } from '../../../../src/util/rng.ts';

/** The scalar loop that sampleToken ran before: the first index of the maximum, NaN never winning past 0. */
function argMaxLoop(row: Float32Array): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

describe('SIMD row passes', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('argMaxSimd finds what the scalar loop finds: ties (first wins), the maximum in the tail, -Infinity, NaN', () => {
    const rng = new Rng(3);
    const rows: Float32Array[] = [];
    for (let n = 1; n <= 13; n++) {
      // Quantised values make ties common.
      for (let t = 0; t < 20; t++) rows.push(Float32Array.from({ length: n }, () => Math.round(rng.normal() * 2)));
    }
    rows.push(Float32Array.from([-Infinity, -Infinity, -Infinity, -Infinity, -Infinity]));
    rows.push(Float32Array.from([NaN, 1, 2, 3, 4, 5]));
    rows.push(Float32Array.from([1, NaN, 2, NaN, 0, 2, 2, NaN, -1]));
    rows.push(Float32Array.from([-0, 0, -0, 0, -1]));
    rows.push(Float32Array.from({ length: 50258 }, (_, j) => (j === 50257 ? 9 : Math.sin(j))));
    rows.push(Float32Array.from({ length: 50258 }, () => Math.round(rng.normal() * 3)));
    for (const row of rows) expect(argMaxSimd(row), Array.from(row.slice(0, 13)).join(',')).toBe(argMaxLoop(row));
  });

  it('gives the same results for a row in the wasm heap (read in place) as for a copy of it in JavaScript memory', () => {
    const rng = new Rng(11);
    const values = Float32Array.from({ length: 3 * 50258 }, () => rng.normal() * 4);
    const t = tf.tensor2d(values, [3, 50258]);
    const heap = hostView(t);
    expect(heap?.buffer).not.toBe(values.buffer);
    for (let r = 0; r < 3; r++) {
      const inHeap = (heap as Float32Array).subarray(r * 50258, (r + 1) * 50258);
      const copy = values.slice(r * 50258, (r + 1) * 50258);
      expect(logSumExpSimd(inHeap)).toBe(logSumExpSimd(copy));
      expect(argMaxSimd(inHeap)).toBe(argMaxLoop(copy));
      expect(Math.abs((logSumExpSimd(copy) as number) - logSumExp(copy))).toBeLessThan(1e-7 * Math.abs(logSumExp(copy)));
    }
    t.dispose();
  });
});
