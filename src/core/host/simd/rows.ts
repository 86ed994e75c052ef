/**
 * Passes over a row of logits in WebAssembly SIMD, four lanes at a time: the maximum, the index of its first
 * occurrence, and log-sum-exp. A row in the wasm backend's heap is read in place; any other row is copied into
 * a private memory first, so a row gives the same result wherever it lives.
 */
import { kernelsIn, scratchIn, wasmHeap, type Kernels } from './instance.ts';
import {
  add, anyTrue, f64Lane, f64x2Add, f64x2Promote, fmax, Fn, get, i32, lane, loop, ret, set, shl, shuffle, splat, sub, Ty,
  vconst, veq, vload, vpmax, vstore, vsub, when, type Code,
} from './wasm.ts';
import { VMath } from './vmath.ts';

/** rowMax(ptr, n4): the largest of the first 4 n4 floats at ptr (NaN never wins; -Infinity when n4 = 0). */
export function rowMax(): Fn {
  const f = new Fn('rowMax', [Ty.i32, Ty.i32], [Ty.f32]);
  const [p, n4] = [0, 1];
  const at = f.local(Ty.i32);
  const end = f.local(Ty.i32);
  const end16 = f.local(Ty.i32);
  const acc = [f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128)];
  // Four running maxima: one would wait on its own latency at every vector.
  const body16: Code = acc.flatMap((a, k) => set(a, vpmax(get(a), vload(get(at), 16 * k))));
  f.body = [
    ...set(end, add(get(p), shl(get(n4), i32(4)))),
    ...set(end16, sub(get(end), i32(48))),
    ...acc.flatMap((a) => set(a, vconst(-Infinity))),
    ...loop(at, get(p), get(end16), 64, body16),
    ...loop(at, get(at), get(end), 16, set(acc[0], vpmax(get(acc[0]), vload(get(at))))),
    ...set(acc[0], vpmax(vpmax(get(acc[0]), get(acc[1])), vpmax(get(acc[2]), get(acc[3])))),
    ...fmax(fmax(lane(get(acc[0]), 0), lane(get(acc[0]), 1)), fmax(lane(get(acc[0]), 2), lane(get(acc[0]), 3))),
  ];
  return f;
}

/** Byte lanes that bring a vector's upper two floats down, where f64x2.promote reads them. */
const HIGH_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

/**
 * Adds the four float32 lanes of e into the float64 accumulators lo (lanes 0, 1) and hi (lanes 2, 3), as rowExpSum
 * does: the sampler's passes use the same code so that their sum, and so their log-probabilities, equal
 * log-sum-exp's bit for bit.
 */
export const expSumStep = (lo: number, hi: number, e: number): Code => [
  ...set(lo, f64x2Add(get(lo), f64x2Promote(get(e)))),
  ...set(hi, f64x2Add(get(hi), f64x2Promote(shuffle(get(e), get(e), HIGH_HALF)))),
];

/** Promotes e's lanes 0, 1 into p1 and 2, 3 into p2: expSumStep's halves, kept when a second sum adds them too. */
export const expSumHalves = (e: number, p1: number, p2: number): Code => [
  ...set(p1, f64x2Promote(get(e))),
  ...set(p2, f64x2Promote(shuffle(get(e), get(e), HIGH_HALF))),
];

/** lo += p1 and hi += p2: with expSumHalves, the same additions as expSumStep. */
export const expSumAdd = (lo: number, hi: number, p1: number, p2: number): Code => [
  ...set(lo, f64x2Add(get(lo), get(p1))),
  ...set(hi, f64x2Add(get(hi), get(p2))),
];

/** The accumulators' total as an f64 on the stack (lo is overwritten). */
export const expSumTotal = (lo: number, hi: number): Code => [
  ...set(lo, f64x2Add(get(lo), get(hi))),
  ...[...f64Lane(get(lo), 0), ...f64Lane(get(lo), 1), 0xa0],
];

/**
 * rowExpSum(ptr, n4, max): the sum of e^(x - max) over the first 4 n4 floats, accumulated in float64. With
 * `inPlace` the function is rowExp(ptr, n4, max), which also writes each e^(x - max) over its x.
 */
export function rowExpSum(inPlace = false): Fn {
  const f = new Fn(inPlace ? 'rowExp' : 'rowExpSum', [Ty.i32, Ty.i32, Ty.f32], [Ty.f64]);
  const [p, n4, max] = [0, 1, 2];
  const at = f.local(Ty.i32);
  const end = f.local(Ty.i32);
  const m = f.local(Ty.v128);
  const e = f.local(Ty.v128);
  const lo = f.local(Ty.v128);
  const hi = f.local(Ty.v128);
  const vm = new VMath(f);
  f.body = [
    ...set(end, add(get(p), shl(get(n4), i32(4)))),
    ...set(m, splat(get(max))),
    ...set(lo, vconst(0)),
    ...set(hi, vconst(0)),
    ...loop(at, get(p), get(end), 16, [
      ...set(e, vm.exp(vsub(vload(get(at)), get(m)))),
      ...(inPlace ? vstore(get(at), get(e)) : []),
      ...expSumStep(lo, hi, e),
    ]),
    ...expSumTotal(lo, hi),
  ];
  return f;
}

/** rowFind(ptr, n4, value): the byte offset of the first 4-float group that holds `value`, or 16 n4. */
function rowFind(): Fn {
  const f = new Fn('rowFind', [Ty.i32, Ty.i32, Ty.f32], [Ty.i32]);
  const [p, n4, value] = [0, 1, 2];
  const at = f.local(Ty.i32);
  const end = f.local(Ty.i32);
  const v = f.local(Ty.v128);
  f.body = [
    ...set(end, add(get(p), shl(get(n4), i32(4)))),
    ...set(v, splat(get(value))),
    ...loop(at, get(p), get(end), 16, when(anyTrue(veq(vload(get(at)), get(v))), ret(sub(get(at), get(p))))),
    ...sub(get(end), get(p)),
  ];
  return f;
}

const build = (): Fn[] => [rowMax(), rowExpSum(), rowFind()];

/** The kernels and the row's address in their memory; copies the row when it lives outside the wasm heap. */
function locate(row: Float32Array): { k: Kernels; ptr: number } | null {
  const heap = wasmHeap();
  if (heap && row.buffer === heap.buffer) {
    const k = kernelsIn(heap, 'rows', build);
    return k ? { k, ptr: row.byteOffset } : null;
  }
  const memory = scratchIn(row.byteLength);
  const k = kernelsIn(memory, 'rows', build);
  if (!k) return null;
  new Float32Array(memory.buffer, 0, row.length).set(row);
  return { k, ptr: 0 };
}

function maxOf(row: Float32Array, k: Kernels, ptr: number): number {
  const n4 = row.length >> 2;
  let max: number = k.rowMax(ptr, n4);
  for (let j = 4 * n4; j < row.length; j++) if (row[j] > max) max = row[j];
  return max;
}

/** log(sum(exp(row))) by the SIMD passes; null where SIMD is unavailable. Empty or all -Infinity rows give -Infinity. */
export function logSumExpSimd(row: Float32Array): number | null {
  const at = locate(row);
  if (!at) return null;
  const max = maxOf(row, at.k, at.ptr);
  if (max === -Infinity) return -Infinity;
  return finishLogSumExp(row, max, at.k.rowExpSum(at.ptr, row.length >> 2, max));
}

/**
 * max + log(z + the exps of the floats past the last whole group of four), z being rowExpSum's sum over the
 * groups: the last step of log-sum-exp, shared with the sampler's passes.
 */
export function finishLogSumExp(row: Float32Array, max: number, z: number): number {
  for (let j = 4 * (row.length >> 2); j < row.length; j++) z += Math.exp(row[j] - max);
  return max + Math.log(z);
}

/**
 * The index of the row's largest value, the first among equals, as the loop `if (row[j] > row[best]) best = j`
 * finds it (so NaN never wins unless it stands at 0); null where SIMD is unavailable.
 */
export function argMaxSimd(row: Float32Array): number | null {
  if (row.length === 0 || Number.isNaN(row[0])) return row.length === 0 ? null : 0;
  const at = locate(row);
  if (!at) return null;
  const max = maxOf(row, at.k, at.ptr);
  const n4 = row.length >> 2;
  const from = n4 > 0 ? at.k.rowFind(at.ptr, n4, max) >> 2 : 0;
  for (let j = from; j < row.length; j++) if (row[j] === max) return j;
  return 0;
}
