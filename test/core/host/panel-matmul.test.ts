import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { hostIO } from '../../../src/core/host/io.ts';
import { BIG_MIN_ROWS, PANEL_MIN_ROWS } from '../../../src/core/host/panel-matmul.ts';
import { Rng } from '../../../src/util/rng.ts';

/**
 * The host kernels' matMul on the wasm heap (packed panels, SIMD) against tfjs's own wasm matMul (XNNPACK) on the
 * same operands, bit for bit, and against a float64 product within float32 rounding: whole and partial panels,
 * a tail of 1-3 columns, odd rows, long sums, the head's vocabulary width.
 */
describe('panel matMul (wasm host kernels)', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });
  const rng = new Rng(5);
  const draw = (n: number) => Float32Array.from({ length: n }, () => rng.normal());

  it.each([
    [PANEL_MIN_ROWS, 1, 4],
    [129, 5, 7],
    [130, 64, 199],
    [257, 128, 200],
    [128, 1000, 66],
    [BIG_MIN_ROWS + 3, 64, 50258],
  ])('[%d, %d] x [%d]-wide equals XNNPACK bit for bit and the float64 product to float32 rounding', (M, K, N) => {
    const a = tf.tensor2d(draw(M * K), [M, K]);
    const b = tf.tensor2d(draw(K * N), [K, N]);
    const io = hostIO('wasm', tf.engine().backend);
    const got = io.matMul(a, b);
    const y = new Float32Array(io.view(got));
    io.free(got);
    const want = tf.matMul(a, b);
    const ref = want.dataSync() as Float32Array;
    let differ = 0;
    for (let i = 0; i < y.length; i++) if (!Object.is(y[i], ref[i])) differ++;
    expect(differ).toBe(0);
    // The float64 oracle on a sample of entries: a float32 sum of K terms strays at most ~K 2^-24 of their magnitude.
    const av = a.dataSync();
    const bv = b.dataSync();
    for (let s = 0; s < 200; s++) {
      const r = rng.int(M);
      const c = s < 3 ? N - 1 - s : rng.int(N);
      let exact = 0;
      let mag = 0;
      for (let k = 0; k < K; k++) {
        exact += av[r * K + k] * bv[k * N + c];
        mag += Math.abs(av[r * K + k] * bv[k * N + c]);
      }
      expect(Math.abs(y[r * N + c] - exact)).toBeLessThanOrEqual(K * 2 ** -23 * mag + 1e-30);
    }
    tf.dispose([a, b, want]);
  });
});
