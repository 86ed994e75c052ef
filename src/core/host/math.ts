/** Scalar maths of the fused host kernels (float64 inside): activations, erf, row norms. */

export const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
export const logSigmoid = (x: number): number => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));
export const silu = (x: number): number => x * sigmoid(x);

/**
 * erf to about 1e-15: the Maclaurin series below |x| = 2.5 (its cancellation costs at most three
 * digits there), a backward-evaluated continued fraction for erfc above.
 */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = a;
    let sum = a;
    const x2 = a * a;
    for (let n = 1; n < 80; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  if (a > 6) return x < 0 ? -1 : 1;
  // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + ...))))
  let f = a;
  for (let n = 60; n >= 1; n--) f = a + n / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return x < 0 ? erfc - 1 : 1 - erfc;
}

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
  for (let r = 0; r < B; r++) {
    const h0 = r * (k - 1) * C;
    for (let j = 0; j < C; j++) {
      let acc = bias[j] + w[(k - 1) * C + j] * x[r * C + j];
      for (let tap = 0; tap < k - 1; tap++) acc += w[tap * C + j] * hist[h0 + tap * C + j];
      out[r * C + j] = silu(acc);
      for (let tap = 0; tap < k - 2; tap++) next[h0 + tap * C + j] = hist[h0 + (tap + 1) * C + j];
      next[h0 + (k - 2) * C + j] = x[r * C + j];
    }
  }
}

/** out = x + y + bias, row by row: a block's residual output. */
export function residualRows(x: Float32Array, y: Float32Array, bias: Float32Array, out: Float32Array, B: number, d: number): void {
  for (let r = 0; r < B; r++) for (let j = 0; j < d; j++) out[r * d + j] = x[r * d + j] + y[r * d + j] + bias[j];
}
