/**
 * The LM head's softmax passes in WebAssembly SIMD over the wasm backend's heap, for rows of V floats: the row
 * maximum and the exps written in place with their sum (rows.ts's passes), the scaling and transposition of a
 * group of GROUP rows, and a sum into an accumulator. Same results as the JavaScript passes of ops/head-loss-passes.ts up
 * to float32 exp and rounding (the JavaScript works in float64 between loads and stores).
 */
import { kernelsIn, type Kernels } from './instance.ts';
import { rowExpSum, rowMax } from './rows.ts';
import { add, Fn, fstore, get, i32, lane, loop, mul, set, shl, shuffle, splat, Ty, vadd, vload, vloadSplat, vmul, vstore, type Code } from './wasm.ts';

/** Rows scaleTranspose handles at once: the transposed copy then gets runs of GROUP floats (two vectors). */
export const GROUP = 8; // two 4x4 transposes per four columns

/** Byte lanes picking float lanes of two vectors (0-3 from the first, 4-7 from the second). */
const lanes = (...floats: number[]): number[] => floats.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/**
 * The 4x4 transpose of the vectors in rs: column j of the block (float j of every vector) as the j-th vector
 * left on the stack by four codes, through two rounds of interleaving (eight shuffles, no lane extraction).
 */
function transpose4(rs: number[], tmp: number[]): Code[] {
  const [a, b, c, d] = tmp;
  const setup: Code = [
    ...set(a, shuffle(get(rs[0]), get(rs[1]), lanes(0, 4, 1, 5))),
    ...set(b, shuffle(get(rs[2]), get(rs[3]), lanes(0, 4, 1, 5))),
    ...set(c, shuffle(get(rs[0]), get(rs[1]), lanes(2, 6, 3, 7))),
    ...set(d, shuffle(get(rs[2]), get(rs[3]), lanes(2, 6, 3, 7))),
  ];
  return [
    [...setup, ...shuffle(get(a), get(b), lanes(0, 1, 4, 5))],
    shuffle(get(a), get(b), lanes(2, 3, 6, 7)),
    shuffle(get(c), get(d), lanes(0, 1, 4, 5)),
    shuffle(get(c), get(d), lanes(2, 3, 6, 7)),
  ];
}

/**
 * scaleTranspose(L, GT, ldT, k0 .. k7): the GROUP rows of V floats from L, row r scaled in place by k_r (float32
 * products), and written transposed into GT: column c's GROUP floats at GT + c ldT. Four columns per pass (8 loads,
 * 8 stores back, two 4x4 transposes, 8 stores of the transposed copy); the V mod 4 last columns one float at a time.
 * The row stride V is compiled in, so each row is a constant offset from one address.
 */
function scaleTranspose(V: number): Fn {
  const f = new Fn('scaleTranspose', [Ty.i32, Ty.i32, Ty.i32, ...Array(GROUP).fill(Ty.f32)], []);
  const [L, GT, ldT] = [0, 1, 2];
  const k = Array.from({ length: GROUP }, (_, r) => 3 + r);
  const at = f.local(Ty.i32);
  const end = f.local(Ty.i32);
  const dst = f.local(Ty.i32);
  const ks = k.map(() => f.local(Ty.v128));
  const v = k.map(() => f.local(Ty.v128));
  const tmp = [f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128)];
  const x = f.local(Ty.f32);
  const rowBytes = 4 * V;
  const V4 = V >> 2;
  const columns: Code = [
    ...v.flatMap((vr, r) => [...set(vr, vmul(vload(get(at), r * rowBytes), get(ks[r]))), ...vstore(get(at), get(vr), r * rowBytes)]),
    ...[0, 4].flatMap((half) =>
      transpose4(v.slice(half, half + 4), tmp).flatMap((col, j) => vstore(add(get(dst), mul(get(ldT), i32(j))), col, 4 * half)),
    ),
    ...set(dst, add(get(dst), shl(get(ldT), i32(2)))),
  ];
  const tail: Code = k.flatMap((_, r) => [
    ...set(x, lane(vmul(vloadSplat(get(at), r * rowBytes), get(ks[r])), 0)),
    ...fstore(get(at), get(x), r * rowBytes),
    ...fstore(get(dst), get(x), 4 * r),
  ]);
  f.body = [
    ...k.flatMap((kr, r) => set(ks[r], splat(get(kr)))),
    ...set(dst, get(GT)),
    ...set(end, add(get(L), i32(16 * V4))),
    ...loop(at, get(L), get(end), 16, columns),
    ...loop(at, get(end), add(get(L), i32(rowBytes)), 4, [...tail, ...set(dst, add(get(dst), get(ldT)))]),
  ];
  return f;
}

/** addInto(acc, x, n4): acc += x over the first 4 n4 floats. */
function addInto(): Fn {
  const f = new Fn('addInto', [Ty.i32, Ty.i32, Ty.i32], []);
  const [acc, x, n4] = [0, 1, 2];
  const at = f.local(Ty.i32);
  const a = () => add(get(acc), get(at));
  f.body = loop(at, i32(0), shl(get(n4), i32(4)), 16, vstore(a(), vadd(vload(a()), vload(add(get(x), get(at))))));
  return f;
}

/** The row kernels for rows of V floats in `heap`, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function headLossKernels(heap: WebAssembly.Memory, V: number): Kernels | null {
  // rowExp sums in float64, as log-sum-exp's pass does: a float32 running sum over 50k terms would lose about
  // log2(50k) bits, and the float64 adds cost little beside the exp.
  return kernelsIn(heap, `headLoss:${V}`, () => [rowMax(), rowExpSum(true), scaleTranspose(V)]);
}

/** addInto alone, for any length; null where WebAssembly SIMD is unavailable. */
export function addIntoKernel(heap: WebAssembly.Memory): Kernels | null {
  return kernelsIn(heap, 'addInto', () => [addInto()]);
}
