/**
 * The row-wise passes of the sLSTM training kernels (train-kernels.ts) that the mLSTM's passes do not cover: the
 * gate pre-activations' assembly, GroupNorm and the gated GeLU, forward and backward. Float64 arithmetic over
 * float32 storage, rows n = b*T + t, views taken after every allocation (a wasm heap may move). On the wasm heap
 * the generated SIMD kernels (train-pass-kernels.ts) stand in for these, which remain the cpu backend's passes and
 * the kernels' test oracle.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { HostIO } from '../host/io.ts';
import { erf } from '../host/math.ts';
import { normBackward } from '../mlstm/block-passes.ts';
import { NORM_EPS } from '../ops/norms.ts';

type Info = tf.TensorInfo;

/** 1 / sqrt(2 pi), the standard normal density at 0. */
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** gx [N, 4H] = [ic | zo] + bG: the W_i, W_f products (of c) and the W_z, W_o products (of xn), in gate order. */
export function gatePreActivations(io: HostIO, ic: Info, zo: Info, bG: Info, gx: Info): void {
  const [N, H2] = ic.shape;
  const a = io.view(ic), b = io.view(zo), bias = io.view(bG), out = io.view(gx);
  for (let n = 0; n < N; n++) {
    const o = n * 2 * H2;
    const i = n * H2;
    for (let j = 0; j < H2; j++) {
      out[o + j] = a[i + j] + bias[j];
      out[o + H2 + j] = b[i + j] + bias[H2 + j];
    }
  }
}

/** dgx [N, 4H] split back into the gradients of the two products: dic, dzo [N, 2H]. */
export function splitGateGrads(io: HostIO, dgx: Info, dic: Info, dzo: Info): void {
  const [N, H2] = dic.shape;
  const g = io.view(dgx), a = io.view(dic), b = io.view(dzo);
  for (let n = 0; n < N; n++) {
    a.set(g.subarray(n * 2 * H2, n * 2 * H2 + H2), n * H2);
    b.set(g.subarray(n * 2 * H2 + H2, (n + 1) * 2 * H2), n * H2);
  }
}

/** GroupNorm_nh of hs [N, H]: hhat and rstd [N, nh] for the backward pass, y = hhat * w + b. */
export function groupNormForward(io: HostIO, nh: number, hs: Info, w: Info, b: Info, hhat: Info, rstd: Info, y: Info): void {
  const H = w.shape[0];
  const N = hs.shape.reduce((a, b) => a * b, 1) / H;
  const dh = H / nh;
  const x = io.view(hs), wv = io.view(w), bv = io.view(b), xh = io.view(hhat), rs = io.view(rstd), out = io.view(y);
  for (let g = 0; g < N * nh; g++) {
    const o = g * dh;
    const ch = (g % nh) * dh;
    let mean = 0;
    for (let e = 0; e < dh; e++) mean += x[o + e];
    mean /= dh;
    let vr = 0;
    for (let e = 0; e < dh; e++) vr += (x[o + e] - mean) ** 2;
    const r = 1 / Math.sqrt(vr / dh + NORM_EPS);
    rs[g] = r;
    for (let e = 0; e < dh; e++) {
      const v = (x[o + e] - mean) * r;
      xh[o + e] = v;
      out[o + e] = v * wv[ch + e] + bv[ch + e];
    }
  }
}

/**
 * GroupNorm_nh backward from dy [N, H]: dhs = rstd (dxhat - mean(dxhat) - hhat mean(dxhat hhat)) per head, with
 * dxhat = dy * w; and the weight and bias gradients (sums over all rows, in float64).
 */
export function groupNormBackward(io: HostIO, nh: number, dy: Info, hhat: Info, rstd: Info, w: Info, dhs: Info, dW: Info, dB: Info): void {
  const H = w.shape[0];
  const N = dy.shape.reduce((a, b) => a * b, 1) / H;
  normBackward(io, N * nh, H / nh, dy, hhat, rstd, w, null, dhs, dW, dB);
}

/** Phi(a), the standard normal distribution function: gelu(a) = a Phi(a). */
const normalCdf = (a: number): number => 0.5 * (1 + erf(a * Math.SQRT1_2));

/** z [N, P] = gelu(a) * b, where [a | b] = up + bUp ([N, 2P]). */
export function geluGateForward(io: HostIO, up: Info, bUp: Info, z: Info): void {
  const [N, P] = z.shape;
  const u = io.view(up), bias = io.view(bUp), out = io.view(z);
  for (let n = 0; n < N; n++) {
    const o = n * 2 * P;
    for (let j = 0; j < P; j++) {
      const a = u[o + j] + bias[j];
      out[n * P + j] = a * normalCdf(a) * (u[o + P + j] + bias[P + j]);
    }
  }
}

/**
 * From dz [N, P]: dup [N, 2P] = [dz b gelu'(a) | dz gelu(a)] with gelu'(a) = Phi(a) + a phi(a) (the exact GeLU),
 * and z = gelu(a) * b rebuilt for the down projection's weight gradient.
 */
export function geluGateBackward(io: HostIO, up: Info, bUp: Info, dz: Info, dup: Info, z: Info): void {
  const [N, P] = z.shape;
  const u = io.view(up), bias = io.view(bUp), g = io.view(dz), d = io.view(dup), out = io.view(z);
  for (let n = 0; n < N; n++) {
    const o = n * 2 * P;
    for (let j = 0; j < P; j++) {
      const a = u[o + j] + bias[j];
      const b = u[o + P + j] + bias[P + j];
      const cdf = normalCdf(a);
      const ga = a * cdf;
      const gz = g[n * P + j];
      d[o + j] = gz * b * (cdf + a * INV_SQRT_2PI * Math.exp(-0.5 * a * a));
      d[o + P + j] = gz * ga;
      out[n * P + j] = ga * b;
    }
  }
}

/** The passes above as one set, so that the training kernels can take the SIMD set (train-pass-kernels.ts) instead. */
export const slstmPasses = { gatePreActivations, groupNormForward, groupNormBackward, geluGateForward, geluGateBackward };

export type SlstmPasses = typeof slstmPasses;
