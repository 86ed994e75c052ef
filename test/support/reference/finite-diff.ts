/** Central finite differences of a scalar function with respect to chosen entries of one parameter tensor. */

/**
 * d f / d param[i] ~ (f(p + eps e_i) - f(p - eps e_i)) / (2 eps) for each i in `indices`. The tensor is
 * perturbed in place and restored exactly (the saved value is written back), so `f` must read `param`
 * itself, not a copy. Truncation error is O(eps^2 f'''), rounding error about ulp(f) / eps: eps = 1e-6
 * on a float64 f of order 1 gives roughly 1e-10 absolute.
 */
export function finiteDiffGrad(f: () => number, param: Float64Array, indices: readonly number[], eps = 1e-6): number[] {
  return indices.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= param.length) {
      throw new Error(`finiteDiffGrad index expected an integer in [0, ${param.length}), but got ${i}.`);
    }
    const saved = param[i];
    try {
      param[i] = saved + eps;
      const up = f();
      param[i] = saved - eps;
      const down = f();
      return (up - down) / (2 * eps);
    } finally {
      param[i] = saved;
    }
  });
}
