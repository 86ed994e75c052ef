/**
 * Runs one block's fused decode step on the wasm backend (the SIMD kernels) and on the cpu backend (the
 * JavaScript loops, float64 inside) from the same weights, input and state, so the two can be compared.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../../src/backend/select.ts';
import { deriveDims, validateModelConfig, XlstmModel, type ModelConfig } from '../../../src/core/index.ts';
import { fusedBlockStep } from '../../../src/core/host/kernels.ts';
import { Rng } from '../../../src/util/rng.ts';
import { TINY_ONE_LAYER } from '../../support/tiny-model.ts';

/** Widths the SIMD kernels cover (dh, d, dm multiples of 4) with an MLP width P = 21 that leaves a scalar tail. */
export const SIMD_CONFIG: ModelConfig = validateModelConfig({ ...TINY_ONE_LAYER, vocab_size: 32 });

export type Arrays = Record<string, { shape: number[]; data: Float32Array }>;

/** n normal draws times `scale`, in float32. */
export const normal = (rng: Rng, n: number, scale: number) => Float32Array.from({ length: n }, () => rng.normal() * scale);

/**
 * A state for block `i` of B rows: row 0 is the initial state (zeros, m = -Infinity), the others random with
 * stabilisers from -30 to 30 and positive normalisers, as running sequences have.
 */
export function randomState(config: ModelConfig, i: number, B: number, seed: number): Arrays {
  const { nh, dh, dm, d, H, k, kinds } = deriveDims(config);
  const rng = new Rng(seed);
  const rowwise = (shape: number[], fill: (r: number) => number) => {
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    return { shape, data: Float32Array.from({ length: B * per }, (_, j) => fill(Math.floor(j / per))) };
  };
  const m = (r: number) => (r === 0 ? -Infinity : (rng.uniform() - 0.5) * 60);
  const zeroOr = (scale: number) => (r: number) => (r === 0 ? 0 : rng.normal() * scale);
  const out: Arrays = {};
  if (k > 0) out.conv = rowwise([B, k - 1, kinds[i] === 'm' ? dm : d], zeroOr(1));
  if (kinds[i] === 'm') {
    out.C = rowwise([B, nh, dh, dh], zeroOr(0.5));
    out.n = rowwise([B, nh, dh], zeroOr(0.5));
    out.m = rowwise([B, nh], m);
  } else {
    out.c = rowwise([B, H], zeroOr(1));
    out.n = rowwise([B, H], (r) => (r === 0 ? 0 : 0.1 + 2 * rng.uniform()));
    out.h = rowwise([B, H], zeroOr(0.3));
    out.m = rowwise([B, H], m);
  }
  return out;
}

/** Block `i`'s step on `backend`: y and the next state, as arrays. */
export async function stepOn(backend: 'wasm' | 'cpu', config: ModelConfig, i: number, x: Float32Array, state: Arrays): Promise<Arrays> {
  await selectBackend(backend);
  const model = XlstmModel.init(config, 5);
  const dims = deriveDims(config);
  const B = x.length / dims.d;
  const out = tf.tidy(() => {
    const s = Object.fromEntries(Object.entries(state).map(([key, a]) => [key, tf.tensor(a.data, a.shape)]));
    const r = fusedBlockStep(tf.tensor2d(x, [B, dims.d]), model.weights.blocks[i], dims, s);
    return { y: r.y, ...r.state } as Record<string, tf.Tensor>;
  });
  const arrays: Arrays = {};
  for (const [key, t] of Object.entries(out)) {
    arrays[key] = { shape: [...t.shape], data: t.dataSync() as Float32Array };
    t.dispose();
  }
  model.dispose();
  return arrays;
}

/** Largest |a - b| over the largest finite |b|, per output; -Infinity entries must agree exactly. */
export function relDiffs(a: Arrays, b: Arrays): Record<string, number> {
  return Object.fromEntries(
    Object.keys(b).map((key) => {
      let err = 0;
      let scale = 0;
      const x = a[key].data;
      const y = b[key].data;
      for (let j = 0; j < y.length; j++) {
        if (!Number.isFinite(y[j])) {
          if (x[j] !== y[j]) err = Infinity;
          continue;
        }
        err = Math.max(err, Math.abs(x[j] - y[j]));
        scale = Math.max(scale, Math.abs(y[j]));
      }
      return [key, err / scale];
    }),
  );
}
