/** Scalar maths of the fused host kernels (float64 inside): exp, activations, erf, row norms, log-sum-exp. */
import { logSumExpSimd } from './simd/rows.ts';

/**
 * exp(d) for d <= 0, within 3e-15 relative, in about a third of Math.exp's time (which V8 calls out of line):
 * d = n ln2/64 + r with |r| <= ln2/128, so exp(d) = 2^(n/64) (a table) times a degree-5 polynomial of r.
 * Below FAST_EXP_FLOOR (e^-50 < 2e-22, rare) it falls back to Math.exp.
 */
const FAST_EXP_FLOOR = -50;
const PER_LN2 = 64 / Math.LN2;
/** ln2/64 split so that n * STEP_HI is exact for the n used here (|n| < 2^12). */
const STEP_HI = Math.round((Math.LN2 / 64) * 2 ** 40) / 2 ** 40;
const STEP_LO = Math.LN2 / 64 - STEP_HI;
/** Adding and removing 1.5 * 2^52 rounds a double of magnitude < 2^51 to the nearest integer. */
const ROUNDER = 6755399441055744;
const POW2 = Float64Array.from({ length: Math.ceil(-FAST_EXP_FLOOR * PER_LN2) + 2 }, (_, k) => 2 ** (-k / 64));

export function expNonPositive(d: number): number {
  if (!(d > FAST_EXP_FLOOR && d <= 0)) return Math.exp(d);
  const n = d * PER_LN2 - ROUNDER + ROUNDER;
  const r = d - n * STEP_HI - n * STEP_LO;
  const r2 = r * r;
  return POW2[-n | 0] * (1 + r + r2 * (0.5 + r * (1 / 6)) + r2 * r2 * (1 / 24 + r * (1 / 120)));
}

/**
 * log(sum(exp(row))), stabilised by the maximum: a row's normaliser for its log-probabilities, a pass over the
 * vocabulary per sampled token. Through the SIMD passes (simd/rows.ts, float32 exp: within 1e-7 of the exact
 * value) where WebAssembly SIMD runs, else in float64 with expNonPositive. Empty or all -Infinity rows give
 * -Infinity.
 */
export function logSumExpRow(row: Float32Array): number {
  return logSumExpSimd(row) ?? logSumExpRowJs(row);
}

/** logSumExpRow without SIMD: exact to about 1e-14. */
export function logSumExpRowJs(row: Float32Array): number {
  const n = row.length;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    const x = row[j];
    if (x > max) max = x;
  }
  if (max === -Infinity) return -Infinity;
  // Two sums: one add chain would wait on its own latency at every element.
  let z0 = 0;
  let z1 = 0;
  let j = 0;
  for (; j + 1 < n; j += 2) {
    z0 += expNonPositive(row[j] - max);
    z1 += expNonPositive(row[j + 1] - max);
  }
  if (j < n) z0 += expNonPositive(row[j] - max);
  return max + Math.log(z0 + z1);
}

/**
 * exp(d) for any d, without a branch on d's sign: the activations take it of their input's negation, whose sign
 * changes from one element to the next (a mispredicted branch costs more than the whole evaluation). Within 3e-15
 * relative for |d| <= 40, 3e-14 out to where results stop being normal (the step ln2/64 is known to 1e-18, and n
 * grows). expNonPositive's reduction, with 2^(n/64) split into a power of two (a table spanning the float64
 * exponents: 0 below 2^-1074, Infinity from 2^1024) times a fraction from a 64-entry table; d is clamped first,
 * so the index stays in range and the ends give 0 and Infinity as Math.exp does. NaN stays NaN.
 */
const EXP_CLAMP_LO = -746;
const EXP_CLAMP_HI = 710;
/** Index of 2^0 in EXP2_INT; the lowest index, EXP_CLAMP_LO * 64 / ln2 / 64 rounded down, must stay >= 0. */
const EXP2_BIAS = 1088;
const EXP2_INT = Float64Array.from({ length: EXP2_BIAS + 1025 }, (_, k) => 2 ** (k - EXP2_BIAS));
const EXP2_FRAC = Float64Array.from({ length: 64 }, (_, k) => 2 ** (k / 64));

export function expClamped(d: number): number {
  const c = d < EXP_CLAMP_LO ? EXP_CLAMP_LO : d > EXP_CLAMP_HI ? EXP_CLAMP_HI : d;
  const n = c * PER_LN2 - ROUNDER + ROUNDER;
  const r = c - n * STEP_HI - n * STEP_LO;
  const i = n | 0;
  const r2 = r * r;
  return EXP2_INT[(i >> 6) + EXP2_BIAS] * EXP2_FRAC[i & 63] * (1 + r + r2 * (0.5 + r * (1 / 6)) + r2 * r2 * (1 / 24 + r * (1 / 120)));
}

/** 1 / (1 + e^-x): relative accuracy on both tails (no 1 - s), Infinity in the denominator gives 0. */
export function sigmoid(x: number): number {
  return 1 / (1 + expClamped(-x));
}

/** The training kernels' form (block-passes, host-cell): kept exactly as it was. */
export function logSigmoid(x: number): number {
  const l = Math.log1p(expNonPositive(-Math.abs(x)));
  return x >= 0 ? -l : x - l;
}

/** 1 - 2 / (1 + e^2x): absolute error below 4e-16 (far below what a float32 state holds), a fraction of Math.tanh's time. */
export function tanh(x: number): number {
  return 1 - 2 / (1 + expClamped(2 * x));
}

export const silu = (x: number): number => x / (1 + expClamped(-x));

/**
 * erf to about 1e-14: below |x| = 2.5 a degree-6 Taylor step from the nearest of a table of points 1/32 apart
 * (erf's derivatives are Hermite polynomials times e^-x^2, so each point stores its six coefficients; the
 * remainder is below 135 (1/64)^7 / 7! = 6e-15), a backward-evaluated continued fraction for erfc above.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < ERF_TABLE_END) {
    const k = Math.round(a * ERF_STEPS);
    const t = a - k / ERF_STEPS;
    const c = k * 7;
    const e = ERF_TAYLOR;
    const r = e[c] + t * (e[c + 1] + t * (e[c + 2] + t * (e[c + 3] + t * (e[c + 4] + t * (e[c + 5] + t * e[c + 6])))));
    return x < 0 ? -r : r;
  }
  if (a > 6) return x < 0 ? -1 : 1;
  // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))
  let f = a;
  for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

/** erf by its Maclaurin series, to about 1e-15 below 2.5 (cancellation costs at most three digits there): the table's values. */
function erfSeries(a: number): number {
  let term = a;
  let sum = a;
  const x2 = a * a;
  for (let n = 1; n < 80; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const ERF_TABLE_END = 2.5;
const ERF_STEPS = 32;
/**
 * Per point x0 = k/32: erf(x0) and erf^(n)(x0)/n! for n = 1..6, where erf^(n+1) = (2/sqrt(pi)) (-1)^n H_n e^-x^2
 * with H_n the physicists' Hermite polynomials (H_0 = 1, H_1 = 2x, H_n+1 = 2x H_n - 2n H_n-1).
 */
const ERF_TAYLOR = (() => {
  const points = Math.round(ERF_TABLE_END * ERF_STEPS) + 1;
  const out = new Float64Array(points * 7);
  for (let k = 0; k < points; k++) {
    const x0 = k / ERF_STEPS;
    const g = (2 / Math.sqrt(Math.PI)) * Math.exp(-x0 * x0);
    out[k * 7] = erfSeries(x0);
    let hPrev = 0;
    let h = 1;
    let factorial = 1;
    for (let n = 0; n < 6; n++) {
      factorial *= n + 1;
      out[k * 7 + n + 1] = ((n % 2 === 0 ? 1 : -1) * g * h) / factorial;
      const next = 2 * x0 * h - 2 * n * hPrev;
      hPrev = h;
      h = next;
    }
  }
  return out;
})();

export const gelu = (x: number): number => 0.5 * x * (1 + erf(x * Math.SQRT1_2));

const EPS = 1e-5;

/** out[o + j] = (x[i + j] - mean) / sqrt(var + eps) * w[wo + j] + b[wo + j] for j < n. */
export function normRow(x: Float32Array, i: number, n: number, w: Float32Array, b: Float32Array, wo: number, out: Float32Array, o: number): void {
  let mean = 0;
  for (let j = 0; j < n; j++) mean += x[i + j];
  mean /= n;
  let v = 0;
  for (let j = 0; j < n; j++) {
    const c = x[i + j] - mean;
    v += c * c;
  }
  const inv = 1 / Math.sqrt(v / n + EPS);
  for (let j = 0; j < n; j++) out[o + j] = (x[i + j] - mean) * inv * w[wo + j] + b[wo + j];
}

/**
 * One causal-conv step for B rows of width C: out = silu(bias + sum_j w[j] * window_j), where the
 * window is the k-1 inputs in `hist` [B, k-1, C] (oldest first) and then `x`; `next` receives the
 * window shifted by one (oldest out, x in last).
 */
export function convStepRows(
  x: Float32Array, B: number, C: number, k: number,
  w: Float32Array, bias: Float32Array, hist: Float32Array, out: Float32Array, next: Float32Array,
): void {
  const taps = k - 1;
  const cur = taps * C;
  for (let r = 0; r < B; r++) {
    const h0 = r * taps * C;
    const x0 = r * C;
    for (let j = 0; j < C; j++) {
      let acc = bias[j] + w[cur + j] * x[x0 + j];
      for (let t = 0, o = j; t < taps; t++, o += C) acc += w[o] * hist[h0 + o];
      out[x0 + j] = acc / (1 + expClamped(-acc));
    }
    // A row's window is one [k-1, C] block, so the shift is two contiguous copies.
    if (taps > 1) next.set(hist.subarray(h0 + C, h0 + cur), h0);
    next.set(x.subarray(x0, x0 + C), h0 + cur - C);
  }
}

/** out = x + y + bias, row by row: a block's residual output. */
export function residualRows(x: Float32Array, y: Float32Array, bias: Float32Array, out: Float32Array, B: number, d: number): void {
  for (let r = 0; r < B; r++) for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j] + y[r * d + j] + bias[j];
}
