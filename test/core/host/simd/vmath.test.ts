import { describe, expect, it } from 'vitest';
import { kernelsIn, scratchIn } from '../../../../src/core/host/simd/instance.ts';
import { interleave, VMath } from '../../../../src/core/host/simd/vmath.ts';
import { add, f32x4Neg, Fn, get, i32, loop, mul, set, shl, Ty, vconst, vload, vmul, vstore, type Code } from '../../../../src/core/host/simd/wasm.ts';

/** A kernel applying one VMath function to n4 groups of four floats: apply(src, dst, n4). */
function unary(name: string, op: (vm: VMath, x: Code) => Code): Fn {
  const f = new Fn(name, [Ty.i32, Ty.i32, Ty.i32], []);
  const at = f.local(Ty.i32);
  const vm = new VMath(f);
  f.body = loop(at, i32(0), shl(get(2), i32(4)), 16, vstore(add(get(1), get(at)), op(vm, vload(add(get(0), get(at))))));
  return f;
}

const OPS = {
  exp: (vm: VMath, x: Code) => vm.exp(x),
  expm1: (vm: VMath, x: Code) => vm.expm1(x),
  sigmoid: (vm: VMath, x: Code) => vm.sigmoid(x),
  tanh: (vm: VMath, x: Code) => vm.tanh(x),
  logSigmoid: (vm: VMath, x: Code) => vm.logSigmoid(x),
  gelu: (vm: VMath, x: Code) => vm.gelu(x),
};

/**
 * exp, sigmoid, logSigmoid or tanh as statements (expSteps, ...) of three VMath objects interleaved, on x, x / 2 and -x:
 * dst holds, per group of four, the three results one after another.
 */
function stepped(name: string, kind: 'expSteps' | 'sigmoidSteps' | 'logSigmoidSteps' | 'tanhSteps'): Fn {
  const f = new Fn(name, [Ty.i32, Ty.i32, Ty.i32], []);
  const at = f.local(Ty.i32);
  const x = f.local(Ty.v128);
  const outs = [f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128)];
  const args = [get(x), vmul(get(x), vconst(0.5)), f32x4Neg(get(x))];
  const vms = outs.map(() => new VMath(f));
  const dst = add(get(1), mul(get(at), i32(3)));
  f.body = loop(at, i32(0), shl(get(2), i32(4)), 16, [
    ...set(x, vload(add(get(0), get(at)))),
    ...interleave(vms.map((vm, k) => vm[kind](args[k], outs[k]))),
    ...outs.flatMap((o, k) => vstore(dst, get(o), 16 * k)),
  ]);
  return f;
}

/** The float32 results of one op on xs (padded to a multiple of four). */
function run(op: keyof typeof OPS, xs: number[]): Float32Array {
  const n4 = Math.ceil(xs.length / 4);
  const memory = scratchIn(32 * n4);
  const k = kernelsIn(memory, 'vmath-test', () => Object.entries(OPS).map(([name, f]) => unary(name, f)));
  if (!k) throw new Error('vmath test expected WebAssembly SIMD, but this runtime has none');
  new Float32Array(memory.buffer, 0, 4 * n4).set(xs);
  k[op](0, 16 * n4, n4);
  return new Float32Array(memory.buffer, 16 * n4, xs.length).slice();
}

/** Points across [lo, hi] at an irrational spacing, in float32, plus the given specials. */
function grid(lo: number, hi: number, n: number, specials: number[] = []): number[] {
  return [...Array.from({ length: n }, (_, i) => Math.fround(lo + ((hi - lo) * ((i * Math.SQRT2) % n)) / n)), ...specials];
}

/** Largest |got - want| / |want| over the points (want from float64 maths on the same float32 inputs). */
function worstRel(got: Float32Array, xs: number[], want: (x: number) => number): number {
  let worst = 0;
  xs.forEach((x, i) => (worst = Math.max(worst, Math.abs(got[i] - want(x)) / Math.abs(want(x)))));
  return worst;
}

/** erf by its Maclaurin series below 3, the continued fraction of erfc above: the float64 oracle for GeLU. */
function erfc64(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    r = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = a;
    for (let n = 80; n >= 1; n--) f = a + n / 2 / f;
    r = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x >= 0 ? r : 2 - r;
}
const gelu64 = (x: number) => 0.5 * x * erfc64(-x / Math.SQRT2);

describe('VMath (WebAssembly SIMD, float32)', () => {
  it('exp and expm1 are within 3e-7 relative of float64 over the float32 range, expm1 also for tiny arguments', () => {
    const xs = grid(-87, 88, 20000, [0, -0, 1e-30, -1e-8, 3e-4, -0.34, 0.35]);
    expect(worstRel(run('exp', xs), xs, Math.exp)).toBeLessThan(3e-7);
    const small = xs.filter((x) => x !== 0);
    expect(worstRel(run('expm1', small), small, Math.expm1)).toBeLessThan(3e-7);
    const kind = (v: number) => (Number.isNaN(v) ? 'NaN' : v > 1e38 ? 'big' : v < 2e-38 ? 'tiny' : v);
    expect(Array.from(run('exp', [-Infinity, Infinity, NaN, 100]), kind)).toEqual(['tiny', 'big', 'NaN', 'big']);
  });

  it('sigmoid, tanh and logSigmoid keep 5e-7 relative accuracy on both tails and near zero', () => {
    const xs = grid(-80, 80, 20000, [1e-7, -1e-7, 1e-20, -3e-12, 0.5, -0.5]);
    expect(worstRel(run('sigmoid', xs), xs, (x) => 1 / (1 + Math.exp(-x)))).toBeLessThan(5e-7);
    const t = xs.filter((x) => Math.abs(x) <= 20);
    expect(worstRel(run('tanh', t), t, Math.tanh)).toBeLessThan(5e-7);
    // log sigmoid(x) is -log1p(e^-x): below e^-87 the float32 exp is clamped, so stop there.
    const l = xs.filter((x) => x < 80);
    expect(worstRel(run('logSigmoid', l), l, (x) => -Math.log1p(Math.exp(-x)))).toBeLessThan(5e-7);
    expect(Array.from(run('tanh', [0, -0, 50, -50]))).toEqual([0, -0, 1, -1]);
  });

  it('gelu is the erf GeLU to 1e-6 relative from -2 up, and keeps 3e-5 relative in the negative tail to -12', () => {
    const xs = grid(-2, 6, 20000, [1e-6, -1e-6, 0.5, -0.5]);
    expect(worstRel(run('gelu', xs), xs, gelu64)).toBeLessThan(1e-6);
    // Further out, the float32 exponent -z^2 (|z| = |x|/sqrt 2) carries its rounding into the result.
    const tail = grid(-12, -2, 4000);
    expect(worstRel(run('gelu', tail), tail, gelu64)).toBeLessThan(3e-5);
  });

  it('the step forms, three interleaved, give exactly exp, sigmoid, logSigmoid and tanh', () => {
    const xs = grid(-90, 90, 4000, [0, -0, 1e-9, -1e-9, 88.5, -88.5, 3, -3]);
    const n4 = xs.length / 4;
    const memory = scratchIn(64 * n4);
    const k = kernelsIn(memory, 'vmath-steps-test', () => [
      stepped('exp', 'expSteps'), stepped('sigmoid', 'sigmoidSteps'), stepped('logSigmoid', 'logSigmoidSteps'), stepped('tanh', 'tanhSteps'),
    ]);
    if (!k) throw new Error('vmath test expected WebAssembly SIMD, but this runtime has none');
    const args = [xs, xs.map((x) => Math.fround(x * 0.5)), xs.map((x) => -x)];
    for (const op of ['exp', 'sigmoid', 'logSigmoid', 'tanh'] as const) {
      new Float32Array(memory.buffer, 0, xs.length).set(xs);
      k[op](0, 16 * n4, n4);
      const out = new Float32Array(memory.buffer, 16 * n4, 3 * xs.length).slice();
      for (let a = 0; a < 3; a++) {
        const got = Float32Array.from(xs, (_, i) => out[12 * Math.floor(i / 4) + 4 * a + (i % 4)]);
        expect(got).toEqual(run(op, args[a]));
      }
    }
  });
});
