/** A block's row-wise LayerNorm and residual sum in WebAssembly SIMD, four channels at a time, for rows of width d. */
import { kernelsIn, type Kernels } from './instance.ts';
import { VMath } from './vmath.ts';
import { add, f32, fadd, fdiv, Fn, fsqrt, get, i32, loop, mul, set, splat, Ty, vadd, vconst, vload, vmul, vstore, vsub } from './wasm.ts';

/**
 * norm(x, w, b, out, B): out = (x - mean) / sqrt(var + 1e-5) * w + b per row of x [B, d] (biased variance, two
 * passes, float32), as math.ts normRow.
 */
export function normFn(d: number): Fn {
  const f = new Fn('norm', Array(5).fill(Ty.i32), []);
  const [x, w, b, out, B] = [0, 1, 2, 3, 4];
  const r = f.local(Ty.i32);
  const o = f.local(Ty.i32);
  const xr = f.local(Ty.i32);
  const yr = f.local(Ty.i32);
  const acc = f.local(Ty.v128);
  const mean = f.local(Ty.v128);
  const inv = f.local(Ty.v128);
  const t = f.local(Ty.v128);
  const vm = new VMath(f);
  const D4 = 4 * d;
  const xo = () => add(get(xr), get(o));
  f.body = loop(r, i32(0), get(B), 1, [
    ...set(xr, add(get(x), mul(get(r), i32(D4)))),
    ...set(yr, add(get(out), mul(get(r), i32(D4)))),
    ...set(acc, vconst(0)),
    ...loop(o, i32(0), i32(D4), 16, set(acc, vadd(get(acc), vload(xo())))),
    ...set(mean, splat(fdiv(vm.hsum(get(acc)), f32(d)))),
    ...set(acc, vconst(0)),
    ...loop(o, i32(0), i32(D4), 16, [...set(t, vsub(vload(xo()), get(mean))), ...set(acc, vadd(get(acc), vmul(get(t), get(t))))]),
    ...set(inv, splat(fdiv(f32(1), fsqrt(fadd(fdiv(vm.hsum(get(acc)), f32(d)), f32(1e-5)))))),
    ...loop(o, i32(0), i32(D4), 16, [
      ...set(t, vmul(vmul(vsub(vload(xo()), get(mean)), get(inv)), vload(add(get(w), get(o))))),
      ...vstore(add(get(yr), get(o)), vadd(get(t), vload(add(get(b), get(o))))),
    ]),
  ]);
  return f;
}

/** residual(x, y, bias, out, B): out = x + y + bias per row of [B, d], as math.ts residualRows. */
export function residualFn(d: number): Fn {
  const f = new Fn('residual', Array(5).fill(Ty.i32), []);
  const [x, y, bias, out, B] = [0, 1, 2, 3, 4];
  const o = f.local(Ty.i32);
  const r = f.local(Ty.i32);
  const at = (base: number) => add(add(get(base), mul(get(r), i32(4 * d))), get(o));
  const sum = vadd(vadd(vload(at(x)), vload(at(y))), vload(add(get(bias), get(o))));
  f.body = loop(r, i32(0), get(B), 1, loop(o, i32(0), i32(4 * d), 16, vstore(at(out), sum)));
  return f;
}

/** A module with norm alone (the model's final LayerNorm), for rows of width d; null without WebAssembly SIMD. */
export function normKernels(heap: WebAssembly.Memory, d: number): Kernels | null {
  return kernelsIn(heap, `norm:${d}`, () => [normFn(d)]);
}
