/**
 * Float64 building blocks of the reference model, one per operation of DESIGN.md, as explicit loops
 * over Float64Array. Vectors are one time step; sequences are arrays of rows, [T][width].
 */
import { erf } from './erf.ts';

/** DESIGN "Conventions": LayerNorm and GroupNorm_nh use eps 1e-5 inside the square root. */
export const NORM_EPS = 1e-5;

/**
 * y[o] = b[o] + sum_i W[o, i] x[i] with W [out, in] row-major (PyTorch layout). `b` is null for the
 * two linears without a bias (skip, head).
 */
export function linear(x: Float64Array, W: Float64Array, b: Float64Array | null, outDim: number): Float64Array {
  const inDim = x.length;
  if (W.length !== outDim * inDim) {
    throw new Error(`linear weight expected ${outDim}x${inDim} = ${outDim * inDim} values, but got ${W.length}.`);
  }
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let acc = b ? b[o] : 0;
    const row = o * inDim;
    for (let i = 0; i < inDim; i++) acc += W[row + i] * x[i];
    y[o] = acc;
  }
  return y;
}

/** Normalises x[from, from + n) into y (mean 0, biased variance 1 with eps), then weight and bias. */
function normaliseSlice(x: Float64Array, y: Float64Array, from: number, n: number, weight: Float64Array, bias: Float64Array, eps: number): void {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[from + i];
  mean /= n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (x[from + i] - mean) ** 2;
  variance /= n; // biased: divide by n, not n - 1
  const inv = 1 / Math.sqrt(variance + eps);
  for (let i = 0; i < n; i++) y[from + i] = (x[from + i] - mean) * inv * weight[from + i] + bias[from + i];
}

/** LayerNorm over the whole vector: (x - mean) / sqrt(var + eps) * weight + bias. */
export function layerNorm(x: Float64Array, weight: Float64Array, bias: Float64Array, eps = NORM_EPS): Float64Array {
  const y = new Float64Array(x.length);
  normaliseSlice(x, y, 0, x.length, weight, bias, eps);
  return y;
}

/**
 * GroupNorm_nh: each of the `groups` contiguous slices (a head's dh values) is normalised on its
 * own, then the per-channel weight[H] and bias[H] apply.
 */
export function groupNorm(x: Float64Array, weight: Float64Array, bias: Float64Array, groups: number, eps = NORM_EPS): Float64Array {
  const width = x.length / groups;
  if (!Number.isInteger(width)) throw new Error(`groupNorm input expected a multiple of ${groups} values, but got ${x.length}.`);
  const y = new Float64Array(x.length);
  for (let g = 0; g < groups; g++) normaliseSlice(x, y, g * width, width, weight, bias, eps);
  return y;
}

/**
 * Causal depthwise convolution over time of a whole sequence xs [T][C] with weight [C, k] and bias [C]:
 *   y_t[c] = bias[c] + sum_{j<k} W[c, j] * x_{t-(k-1)+j}[c],  x_s = 0 for s < 0,
 * so W[c, k-1] multiplies the current input (PyTorch Conv1d, groups = C, k-1 zeros of left padding).
 */
export function causalConv(xs: Float64Array[], W: Float64Array, b: Float64Array, k: number): Float64Array[] {
  return xs.map((x, t) => {
    const C = x.length;
    const y = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let acc = b[c];
      for (let j = 0; j < k; j++) {
        const s = t - (k - 1) + j;
        if (s >= 0) acc += W[c * k + j] * xs[s][c];
      }
      y[c] = acc;
    }
    return y;
  });
}

/**
 * One step of the same convolution. `state` holds the last k-1 inputs, oldest first (zeros at the
 * start of a sequence); the returned state drops the oldest and appends x. The input state is untouched.
 */
export function causalConvStep(
  x: Float64Array,
  state: readonly Float64Array[],
  W: Float64Array,
  b: Float64Array,
  k: number,
): { y: Float64Array; state: Float64Array[] } {
  if (state.length !== k - 1) throw new Error(`conv state expected ${k - 1} rows, but got ${state.length}.`);
  const window = [...state, x]; // window[j] = x_{t-(k-1)+j}
  const C = x.length;
  const y = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let acc = b[c];
    for (let j = 0; j < k; j++) acc += W[c * k + j] * window[j][c];
    y[c] = acc;
  }
  return { y, state: window.slice(1).map((row) => Float64Array.from(row)) };
}

/** 1 / (1 + exp(-x)), written so that neither branch overflows. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): exact for large |x| in both directions. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** log(sigmoid(x)) = -softplus(-x) = min(x, 0) - log1p(exp(-|x|)); -60 gives -60 - 8.8e-27, not log(0). */
export function logsigmoid(x: number): number {
  return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
}

export function silu(x: number): number {
  return x * sigmoid(x);
}

/** The exact (erf) GeLU: x * Phi(x) = x/2 * (1 + erf(x / sqrt(2))), as PyTorch's gelu(approximate='none'). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

/** Elementwise map into a new Float64Array. */
export function map(x: Float64Array, f: (v: number) => number): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = f(x[i]);
  return y;
}
