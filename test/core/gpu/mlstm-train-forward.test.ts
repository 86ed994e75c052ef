import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/backend/select.ts';
import { mlstmTrainForwardGpu, registerMlstmTrainForwardGpu } from '../../../src/core/gpu/mlstm-train-forward.ts';
import { rowsMatMul } from '../../../src/core/gpu/rows-matmul.ts';
import '../../../src/core/mlstm/train-block.ts'; // registers the host kernels, the oracle
import { traceNames, type MlstmTrainAttrs } from '../../../src/core/mlstm/train-kernels.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/tiny-model.ts';
import { webgpuTitle, webgpuUnavailable } from '../../support/webgpu.ts';

const reason = await webgpuUnavailable();
const FORWARD = 'XlstmMlstmTrainForward';

interface Named {
  readonly shape: number[];
  readonly data: Float32Array;
}

/**
 * Random block inputs with gates in the regimes the stabiliser cares about: forget-gate biases 3..6
 * as initialised, and input gates spread over several units so that the running maximum moves.
 */
function blockInputs(B: number, T: number, d: number, a: MlstmTrainAttrs, seed: number, igateShift = 0): Record<string, Named> {
  const { nh, dh, dm, k } = a;
  const H = nh * dh;
  const rng = new Rng(seed);
  const draw = (shape: number[], scale: number, shift = 0): Named => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => shift + scale * rng.normal()),
  });
  const Wc = 3 * H + 2 * nh;
  const wC = draw([dm, Wc], 1 / Math.sqrt(dm));
  for (let i = 0; i < dm; i++) for (let j = 2 * H; j < 2 * H + nh; j++) wC.data[i * Wc + j] *= 4; // input gates
  const bC = draw([2 * H + 2 * nh], 0.1);
  for (let j = 0; j < nh; j++) {
    bC.data[2 * H + j] += igateShift;
    bC.data[2 * H + nh + j] = 3 + (3 * j) / Math.max(1, nh - 1);
  }
  return {
    x: draw([B, T, d], 1, 0.3),
    normW: draw([d], 0.1, 1),
    normB: draw([d], 0.1),
    wUp: draw([d, dm + H], 1 / Math.sqrt(d)),
    bUp: draw([dm + H], 0.1),
    ...(k > 0 ? { convW: draw([k, dm], 0.5), convB: draw([dm], 0.1) } : {}),
    wC,
    bC,
    wU: draw([dm, 2 * H], 1 / Math.sqrt(dm)),
    bU: draw([2 * H], 0.1),
    outW: draw([H], 0.1, 1),
    outB: draw([H], 0.1),
    wDown: draw([H, d], 1 / Math.sqrt(H)),
    bDown: draw([d], 0.1),
  };
}

/** Runs the registered forward kernel on the active backend; its outputs come back as arrays. */
async function runForward(inputs: Record<string, Named>, a: MlstmTrainAttrs): Promise<Float32Array[]> {
  const named: tf.NamedTensorMap = {};
  for (const [key, t] of Object.entries(inputs)) named[key] = tf.tensor(t.data, t.shape);
  const outs = tf.engine().runKernel(FORWARD, named, a as unknown as tf.NamedAttrMap) as tf.Tensor[];
  const data = await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose([...outs, ...Object.values(named)]);
  return data;
}

/** log(sigmoid(x)) in float64. */
function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

/**
 * How far float32 can move each element of h~ = num / z. The two kernels compute q and k with
 * rounding differences of ~1e-7 relative to their magnitude, and h~ divides sums of signed terms
 * S[t, s] = (q_t . k_s) D[t, s] by z = max(|sum S|, floor): where the terms cancel, those
 * differences grow by sum|S| / z (up to ~130 seen at the reference size). So the scale of element
 * (t, x) is (A |h~| + sum_s |q_t||k_s| D |v_s,x|) / z with A = sum_s |q_t||k_s| D, all in float64
 * (|q_t||k_s| meaning sum_x |q_t,x k_s,x|, the dot product's own rounding scale).
 */
function cellScale(q: Float32Array, k: Float32Array, v: Float32Array, gates: Float32Array, s: { B: number; T: number; nh: number; dh: number }): Float64Array {
  const { B, T, nh, dh } = s;
  const H = nh * dh;
  const out = new Float64Array(B * T * H);
  const g = new Float64Array(T);
  const cum = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < nh; j++) {
      let acc = 0;
      for (let t = 0; t < T; t++) {
        const row = (b * T + t) * 2 * nh;
        acc += logSigmoid(gates[row + nh + j]);
        cum[t] = acc;
        g[t] = gates[row + j] - acc;
      }
      let M = -Infinity;
      for (let t = 0; t < T; t++) {
        M = Math.max(M, g[t]);
        const qo = (b * T + t) * H + j * dh;
        let r = 0;
        let A = 0;
        const num = new Float64Array(dh);
        const Bv = new Float64Array(dh);
        for (let u = 0; u <= t; u++) {
          const ko = (b * T + u) * H + j * dh;
          let dot = 0;
          let adot = 0;
          for (let x = 0; x < dh; x++) {
            dot += q[qo + x] * k[ko + x];
            adot += Math.abs(q[qo + x] * k[ko + x]);
          }
          const D = Math.exp(g[u] - M);
          r += dot * D;
          A += adot * D;
          for (let x = 0; x < dh; x++) {
            num[x] += dot * D * v[ko + x];
            Bv[x] += adot * D * Math.abs(v[ko + x]);
          }
        }
        const z = Math.max(Math.abs(r), Math.exp(Math.min(-(cum[t] + M), 80)));
        for (let x = 0; x < dh; x++) out[qo + x] = (A * Math.abs(num[x] / z) + Bv[x]) / z;
      }
    }
  }
  return out;
}

/** GroupNorm (eps 1e-5) of so * h~ per head in float64: hhat [N, H] and rstd [N, nh]. */
function groupNorm(so: Float32Array, ht: Float32Array, nh: number, dh: number): { hhat: Float64Array; rstd: Float64Array } {
  const H = nh * dh;
  const N = ht.length / H;
  const hhat = new Float64Array(N * H);
  const rstd = new Float64Array(N * nh);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nh; j++) {
      const o = n * H + j * dh;
      let mean = 0;
      for (let x = 0; x < dh; x++) mean += so[o + x] * ht[o + x];
      mean /= dh;
      let vr = 0;
      for (let x = 0; x < dh; x++) vr += (so[o + x] * ht[o + x] - mean) ** 2;
      const r = 1 / Math.sqrt(vr / dh + 1e-5);
      rstd[n * nh + j] = r;
      for (let x = 0; x < dh; x++) hhat[o + x] = (so[o + x] * ht[o + x] - mean) * r;
    }
  }
  return { hhat, rstd };
}

describe.skipIf(reason)(webgpuTitle('the webgpu mLSTM training forward kernel', reason), () => {
  it.each([
    // dm + H and 5H + 2nh above 64 (the rows programs' threads): several columns per thread.
    ['k = 4, one cell tile', 9, 4, 0, 2, 8],
    ['k = 0 (c = u)', 9, 0, 0, 2, 8],
    ['k = 4, T = 70: two cell tiles and row tiles across sequences', 70, 4, 0, 2, 8],
    ["input gates near -8, where the normaliser's floor exp(-m) binds", 9, 4, -8, 2, 8],
    ['three heads of dh = 6, padded to vec4s', 9, 4, 0, 3, 6],
  ] as const)('gives the host kernel y and every trace tensor (%s)', async (_label, T, k, igateShift, nh, dh) => {
    const B = 2;
    const d = 8;
    const a: MlstmTrainAttrs = { nh, dh, dm: 56, k };
    const inputs = blockInputs(B, T, d, a, 11 + T + k, igateShift);
    await selectBackend('cpu');
    const want = await runForward(inputs, a);
    await selectBackend('webgpu');
    registerMlstmTrainForwardGpu();
    const before = tf.engine().backend.numDataIds();
    const got = await runForward(inputs, a);
    // Only the outputs and the inputs were allocated, and all are gone: the scratch y was released.
    expect(tf.engine().backend.numDataIds()).toBe(before);
    const names = ['y', ...traceNames(k)];
    expect(got.length).toBe(names.length);
    const at = (name: string) => names.indexOf(name);
    // h~ is held to its own error scale (cellScale), GroupNorm to float64 on the kernel's own h~.
    const own = new Set(['ht', 'hhat', 'rstd2']);
    names.forEach((name, i) => {
      expect(got[i].length, name).toBe(want[i].length);
      // Float32 throughout against float64 passes over float32 storage.
      if (!own.has(name)) expect(maxRelDiff(got[i], want[i]), name).toBeLessThan(1e-5);
    });
    const scale = cellScale(want[at('q')], want[at('kk')], want[at('v')], want[at('gates')], { B, T, nh: a.nh, dh: a.dh });
    const ht = got[at('ht')];
    const wantHt = want[at('ht')];
    let worst = 0;
    for (let i = 0; i < ht.length; i++) worst = Math.max(worst, Math.abs(ht[i] - wantHt[i]) / scale[i]);
    expect(worst).toBeLessThan(1e-5);
    const gn = groupNorm(got[at('so')], ht, a.nh, a.dh);
    expect(maxRelDiff(got[at('hhat')], gn.hhat)).toBeLessThan(1e-5);
    expect(maxRelDiff(got[at('rstd2')], gn.rstd)).toBeLessThan(1e-5);
  });

  it('rejects weights that do not match the attributes', async () => {
    await selectBackend('webgpu');
    const a: MlstmTrainAttrs = { nh: 2, dh: 4, dm: 12, k: 4 };
    const inputs = blockInputs(1, 3, 8, a, 3);
    const named: Record<string, tf.Tensor> = {};
    for (const [key, t] of Object.entries(inputs)) named[key] = tf.tensor(t.data, t.shape);
    expect(() => mlstmTrainForwardGpu(named, { ...a, dm: 16 })).toThrow(/expected wUp of shape \[8,24\], but got \[8,20\]/);
    tf.dispose(Object.values(named));
  });
});

/** out = op(a) op(b) + bias + residual in float64. */
function product(a: Float32Array, b: Float32Array, M: number, K: number, N: number, tA: boolean, tB: boolean, bias: Float32Array, res: Float32Array) {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = bias[n] + res[m * N + n];
      for (let k = 0; k < K; k++) acc += (tA ? a[k * M + m] : a[m * K + k]) * (tB ? b[n * K + k] : b[k * N + n]);
      out[m * N + n] = acc;
    }
  }
  return out;
}

describe.skipIf(reason)(webgpuTitle('the webgpu rows matMul', reason), () => {
  it.each([
    ['a b + bias + residual', false, false, true, 21],
    ['a^T b + bias + residual', true, false, true, 21],
    ['a b^T + bias + residual', false, true, true, 21],
    ['a^T b^T + bias + residual', true, true, true, 21],
    ['a^T b over many rows (a weight gradient)', true, false, false, 300],
  ] as const)('computes %s on sizes off the tile', async (_label, tA, tB, epilogue, K) => {
    await selectBackend('webgpu');
    const [M, N] = [37, 18];
    const rng = new Rng(5);
    const draw = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
    const [a, b] = [draw(M * K), draw(K * N)];
    const [bias, res] = epilogue ? [draw(N), draw(M * N)] : [new Float32Array(N), new Float32Array(M * N)];
    const want = product(a, b, M, K, N, tA, tB, bias, res);
    const ta = tf.tensor2d(a, tA ? [K, M] : [M, K]);
    const tb = tf.tensor2d(b, tB ? [N, K] : [K, N]);
    const extra = epilogue ? { bias: tf.tensor1d(bias), residual: tf.tensor2d(res, [M, N]) } : {};
    const info = rowsMatMul(tf.backend(), ta, tb, { transposeA: tA, transposeB: tB, ...extra });
    const out = tf.engine().makeTensorFromTensorInfo(info);
    expect(out.shape).toEqual([M, N]);
    expect(maxRelDiff(await out.data(), want)).toBeLessThan(1e-6);
    tf.dispose([ta, tb, out, ...Object.values(extra)]);
  });
});
