import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { hostIO, type HostIO } from '../../../src/core/host/io.ts';
import { addInto, GROUP, jsPasses, simdPasses } from '../../../src/core/ops/head-loss-passes.ts';
import { Rng } from '../../../src/util/rng.ts';

/**
 * The head-loss passes by SIMD kernels in the wasm heap against the JavaScript loops (float64 between loads and
 * stores) on the same rows: odd widths (the V mod 4 last floats take the scalar path), the real vocabulary.
 */
const EPS = 2 ** -24; // float32's unit roundoff

/** Logits as the head gives them: normal, with a few large ones so that max and exp have work to do. */
function logits(rng: Rng, n: number, V: number): Float32Array {
  return Float32Array.from({ length: n * V }, () => (rng.uniform() < 0.001 ? 12 : 3) * rng.normal());
}

describe('the SIMD head-loss passes', () => {
  let io: HostIO;
  beforeAll(async () => {
    await selectBackend('wasm');
    io = hostIO('wasm', tf.backend());
  });

  it.each([3, 37, 1001, 50258])('match the JavaScript on rows of V = %i', (V) => {
    const n = 2 * GROUP;
    const rng = new Rng(V);
    const x = logits(rng, n, V);
    const G = io.alloc([n, V]);
    const GT = io.alloc([V, n]);
    io.view(G).set(x);
    const simd = simdPasses(io, G, GT);
    if (!simd) throw new Error('expected WebAssembly SIMD in this runtime');
    const L = x.slice();
    const LT = new Float32Array(V * n);
    const js = jsPasses(L, LT, V, n);
    const got = io.view(G);
    for (let r = 0; r < n; r++) {
      const max = js.max(r);
      expect(simd.max(r)).toBe(max);
      const want = js.exp(r, max);
      const sum = simd.exp(r, max);
      // float32 exp is within 3 ulp; x - max rounded to float32 moves its exp by up to EPS |x - max| relative.
      let bound = 0;
      for (let c = 0; c < V; c++) {
        const i = r * V + c;
        const tol = L[i] * (6 * EPS + EPS * Math.abs(x[i] - max));
        bound += tol;
        if (!(Math.abs(got[i] - L[i]) <= tol)) expect.fail(`row ${r}, column ${c}: SIMD ${got[i]}, JavaScript ${L[i]}`);
      }
      expect(Math.abs(sum - want)).toBeLessThanOrEqual(bound);
    }
    // The same exps on both sides from here: the scaling alone is compared.
    L.set(got);
    const k = Float64Array.from({ length: n }, (_, r) => (r === n - 1 ? 0 : rng.uniform() / 1000));
    for (let g0 = 0; g0 < n; g0 += GROUP) {
      js.scaleTransposeGroup(g0, k);
      simd.scaleTransposeGroup(g0, k);
    }
    const gotL = io.view(G);
    const gotT = io.view(GT);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < V; c++) {
        const i = r * V + c;
        // k rounded to float32, then the product: two roundings where the JavaScript has one.
        if (!(Math.abs(gotL[i] - L[i]) <= 3 * EPS * Math.abs(L[i]))) expect.fail(`row ${r}, column ${c}: SIMD ${gotL[i]}, JavaScript ${L[i]}`);
        if (gotT[c * n + r] !== gotL[i]) expect.fail(`transposed copy at column ${c}, row ${r}: ${gotT[c * n + r]}, row holds ${gotL[i]}`);
      }
    }
    io.free(G);
    io.free(GT);
  });

  it('addInto sums exactly as the float32 loop does, tail included', () => {
    const rng = new Rng(5);
    for (const len of [1, 6, 64 * 1001 + 3]) {
      const a = Float32Array.from({ length: len }, () => rng.normal());
      const b = Float32Array.from({ length: len }, () => rng.normal());
      const acc = io.alloc([len]);
      const x = io.alloc([len]);
      io.view(acc).set(a);
      io.view(x).set(b);
      addInto(io, acc, x);
      const want = a.map((v, i) => v + b[i]);
      expect(io.view(acc)).toEqual(want);
      io.free(acc);
      io.free(x);
    }
  });
});
