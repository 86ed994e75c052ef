/**
 * Vector maths emitted into a kernel function: exp, sigmoid, silu and horizontal sums of four float32 lanes,
 * each inlined where it is used and working in temporaries of its own.
 */
import {
  f32x4Neg, fadd, Fn, get, i32x4Add, i32x4Shl, i32x4Splat, lane, set, Ty, vabs, vadd, vbits, vconst, vdiv, vmin, vmul,
  vlt, vpmax, vpmin, vselect, vsub, type Code,
} from './wasm.ts';

/** ln 2 split so that n * LN2_HI is exact in float32 for |n| <= 127 (nine significant bits). */
const LN2_HI = 0.693359375;
const LN2_LO = Math.LN2 - LN2_HI;
/**
 * The clamp keeps 2^n normal (n in [-126, 127]), so the scale is built from its exponent bits alone; below
 * it exp is under 1.2e-38 (a float32 rounds what is left to the same few subnormals), above it overflows.
 */
const EXP_LO = -87.33;
const EXP_HI = 88.37;
/** 1.5 * 2^23: a float32 sum with it is rounded to an integer, which its low mantissa bits then hold. */
const ROUND_MAGIC = 12582912;
/** Taylor coefficients of e^r on |r| <= ln2/2, highest first: the remainder is below r^8/8! = 5e-9. */
const TAYLOR = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1];

/** erfc(z) = t exp(-z^2 + sum_i ERFC_FIT[i] t^i) with t = 1 / (1 + z/2), z >= 0 (Numerical Recipes, erfcc). */
const ERFC_FIT = [
  -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223,
  0.17087277,
];

export class VMath {
  private readonly t: number;
  private readonly n: number;
  private readonly s: number;
  private readonly b: number;
  private readonly u: number;
  private readonly w: number;

  constructor(f: Fn) {
    this.u = f.local(Ty.v128);
    this.w = f.local(Ty.v128);
    this.t = f.local(Ty.v128);
    this.n = f.local(Ty.v128);
    this.s = f.local(Ty.v128);
    this.b = f.local(Ty.v128);
  }

  /**
   * e^x per lane, within about 2 ulp: x = n ln2 + r with n = round(x / ln2), 2^n from the exponent bits,
   * e^r by its Taylor polynomial. NaN stays NaN. The argument of any method here may use anything but this
   * object's temporaries.
   */
  exp(x: Code): Code {
    const { t, b } = this;
    return [...this.reduce(x), ...vmul(vadd(vmul(this.series(), get(t)), vconst(1)), this.scale(get(b)))];
  }

  /**
   * e^x - 1 per lane with relative accuracy near 0: 2^n (1 + q(r)) - 1 = (2^n - 1) + 2^n q(r), where q(r) =
   * e^r - 1 is the series without its constant; both terms are exact or far from cancelling (for n = 0 the
   * first is 0, for n != 0 the sum is at least 0.29 in size).
   */
  expm1(x: Code): Code {
    const { t, b, s } = this;
    return [
      ...this.reduce(x),
      ...set(s, this.scale(get(b))),
      ...vadd(vsub(get(s), vconst(1)), vmul(get(s), vmul(this.series(), get(t)))),
    ];
  }

  /** x = n ln2 + r: leaves r in t and n + ROUND_MAGIC (its bits) in b; x clamped to [EXP_LO, EXP_HI] first. */
  private reduce(x: Code): Code {
    const { t, n, b } = this;
    return [
      ...set(t, vpmin(vpmax(x, vconst(EXP_LO)), vconst(EXP_HI))),
      // Adding ROUND_MAGIC rounds x/ln2 to an integer n, which the sum's low mantissa bits then hold.
      ...set(b, vadd(vmul(get(t), vconst(Math.LOG2E)), vconst(ROUND_MAGIC))),
      ...set(n, vsub(get(b), vconst(ROUND_MAGIC))),
      ...set(t, vsub(vsub(get(t), vmul(get(n), vconst(LN2_HI))), vmul(get(n), vconst(LN2_LO)))),
    ];
  }

  /** (e^r - 1) / r by Horner in r (held in t). */
  private series(): Code {
    let poly = vconst(TAYLOR[0]);
    for (const c of TAYLOR.slice(1, -1)) poly = vadd(vmul(poly, get(this.t)), vconst(c));
    return poly;
  }

  /** 2^n from n + ROUND_MAGIC's bits: (bits + 127) << 23 keeps n + 127, the biased exponent (ROUND_MAGIC's shift out). */
  private scale(bits: Code): Code {
    return i32x4Shl(i32x4Add(bits, i32x4Splat(127)), 23);
  }

  /** tanh x = sign(x) (1 - e^-2|x|) / (1 + e^-2|x|), through expm1 so that small x keep their relative accuracy. */
  tanh(x: Code): Code {
    const { u } = this;
    return [
      ...set(u, x),
      ...set(this.w, this.expm1(vmul(vabs(get(u)), vconst(-2)))),
      ...vselect(get(u), vdiv(f32x4Neg(get(this.w)), vadd(get(this.w), vconst(2))), vbits(0x80000000)),
    ];
  }

  /**
   * log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|); log1p(e) = 2 atanh(s) with s = e / (2 + e) <= 1/3, whose odd
   * series s + s^3/3 + ... stops below s^17/17 < 5e-10 and keeps relative accuracy for small e.
   */
  logSigmoid(x: Code): Code {
    const { u, w, s } = this;
    let series = vconst(1 / 15);
    for (let k = 13; k >= 1; k -= 2) series = vadd(vmul(series, vmul(get(w), get(w))), vconst(1 / k));
    return [
      ...set(u, x),
      ...set(s, this.exp(f32x4Neg(vabs(get(u))))),
      ...set(w, vdiv(get(s), vadd(get(s), vconst(2)))),
      ...vsub(vmin(get(u), vconst(0)), vmul(vmul(get(w), vconst(2)), series)),
    ];
  }

  /**
   * e^x into the local `out` as a list of statements, each one step of the same sums as exp(): kernels interleave
   * the lists of several VMath objects (`interleave`) so that the core has independent work while each chain of
   * dependent steps waits on its last result. The step forms below (sigmoid, logSigmoid, tanh) likewise.
   */
  expSteps(x: Code, out: number): Code[] {
    return [...this.reduceSteps(x), set(out, vmul(vadd(vmul(get(this.s), get(this.t)), vconst(1)), this.scale(get(this.b))))];
  }

  sigmoidSteps(x: Code, out: number): Code[] {
    return [...this.expSteps(f32x4Neg(x), out), set(out, vdiv(vconst(1), vadd(vconst(1), get(out))))];
  }

  logSigmoidSteps(x: Code, out: number): Code[] {
    const { u, w, s, t, n } = this;
    // w^2 once into n (free once the exp is done): the same product logSigmoid() forms at every step.
    const steps = [set(u, x), ...this.expSteps(f32x4Neg(vabs(get(u))), s), set(w, vdiv(get(s), vadd(get(s), vconst(2)))), set(n, vmul(get(w), get(w))), set(t, vconst(1 / 15))];
    for (let k = 13; k >= 1; k -= 2) steps.push(set(t, vadd(vmul(get(t), get(n)), vconst(1 / k))));
    return [...steps, set(out, vsub(vmin(get(u), vconst(0)), vmul(vmul(get(w), vconst(2)), get(t))))];
  }

  tanhSteps(x: Code, out: number): Code[] {
    const { u, w, s, t, b } = this;
    return [
      set(u, x),
      ...this.reduceSteps(vmul(vabs(get(u)), vconst(-2))),
      // expm1's last sums, as expm1(): (2^n - 1) + 2^n q(r).
      set(w, this.scale(get(b))),
      set(w, vadd(vsub(get(w), vconst(1)), vmul(get(w), vmul(get(s), get(t))))),
      set(out, vselect(get(u), vdiv(f32x4Neg(get(w)), vadd(get(w), vconst(2))), vbits(0x80000000))),
    ];
  }

  /** reduce() and series() as statements: r in t, n + ROUND_MAGIC's bits in b, the series (without r) in s. */
  private reduceSteps(x: Code): Code[] {
    const { t, n, b, s } = this;
    const steps: Code[] = [
      set(t, vpmin(vpmax(x, vconst(EXP_LO)), vconst(EXP_HI))),
      set(b, vadd(vmul(get(t), vconst(Math.LOG2E)), vconst(ROUND_MAGIC))),
      set(n, vsub(get(b), vconst(ROUND_MAGIC))),
      set(t, vsub(vsub(get(t), vmul(get(n), vconst(LN2_HI))), vmul(get(n), vconst(LN2_LO)))),
      set(s, vconst(TAYLOR[0])),
    ];
    for (const c of TAYLOR.slice(1, -1)) steps.push(set(s, vadd(vmul(get(s), get(t)), vconst(c))));
    return steps;
  }

  /** 1 / (1 + e^-x): relative accuracy on both tails, as the scalar form. */
  sigmoid(x: Code): Code {
    return vdiv(vconst(1), vadd(vconst(1), this.exp(f32x4Neg(x))));
  }

  /**
   * x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), the exact GeLU, with 1 + erf(z) = erfc(-z): erfc(|z|) by the
   * Chebyshev fit of Numerical Recipes' erfcc (relative error below 1.2e-7 for every z >= 0), so both tails keep
   * their relative accuracy: 2 - erfc(|z|) for x >= 0, erfc(|z|) itself for x < 0.
   */
  gelu(x: Code): Code {
    return [...this.erfcAbs(x), ...vmul(vmul(get(this.u), vconst(0.5)), this.onePlusErf())];
  }

  /** Phi(x) = 0.5 (1 + erf(x / sqrt 2)), the standard normal distribution function (gelu(x) = x Phi(x)), as gelu computes it. */
  normalCdf(x: Code): Code {
    return [...this.erfcAbs(x), ...vmul(vconst(0.5), this.onePlusErf())];
  }

  /** x into u and erfc(|x| / sqrt 2) into s, by the fit. */
  private erfcAbs(x: Code): Code {
    const { u, w, s } = this;
    let poly = vconst(ERFC_FIT[ERFC_FIT.length - 1]);
    for (let i = ERFC_FIT.length - 2; i >= 0; i--) poly = vadd(vmul(poly, get(w)), vconst(ERFC_FIT[i]));
    return [
      ...set(u, x),
      ...set(s, vmul(vabs(get(u)), vconst(Math.SQRT1_2))),
      ...set(w, vdiv(vconst(1), vadd(vconst(1), vmul(get(s), vconst(0.5))))),
      ...set(s, vmul(get(w), this.exp(vsub(poly, vmul(get(s), get(s)))))),
    ];
  }

  /** 1 + erf(u / sqrt 2) from erfcAbs's s: 2 - s for u >= 0, s itself for u < 0. */
  private onePlusErf(): Code {
    const { u, s } = this;
    return vselect(get(s), vsub(vconst(2), get(s)), vlt(get(u), vconst(0)));
  }

  /** The sum of the four lanes of v, as (v0 + v1) + (v2 + v3). */
  hsum(v: Code): Code {
    const { s } = this;
    return [...set(s, v), ...fadd(fadd(lane(get(s), 0), lane(get(s), 1)), fadd(lane(get(s), 2), lane(get(s), 3)))];
  }
}

/** The statements of several lists, round robin: step i of every list before step i + 1 of any. */
export function interleave(lists: Code[][]): Code {
  const out: Code = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) out.push(...l[i]);
  return out;
}
