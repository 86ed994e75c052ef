/**
 * A float32 transpose in WebAssembly SIMD over the wasm heap: 4 x 4 blocks moved with eight shuffles each, a
 * column block of the source at a time so that the destination is written in order and the source's cache lines
 * are reused by the next block. The training kernels transpose an operand before most of their matMuls.
 */
import { kernelsIn, type Kernels } from './instance.ts';
import { ishrU } from './wasm-more.ts';
import { add, Fn, get, i32, loop, mul, set, shuffle, Ty, vload, vstore, type Code } from './wasm.ts';

/** Byte lanes for shuffle(a, b): float lane i of a is i, of b is 4 + i. */
const lanes = (...floats: number[]): number[] => floats.flatMap((f) => [4 * f, 4 * f + 1, 4 * f + 2, 4 * f + 3]);

/**
 * transpose(src, rows, cols, dst): dst [cols, rows] (row stride `rows` floats) gets src [rows, cols] transposed,
 * over the first 4 floor(rows / 4) rows and 4 floor(cols / 4) columns; the caller moves the rest.
 */
function transposeFn(): Fn {
  const f = new Fn('transpose', [Ty.i32, Ty.i32, Ty.i32, Ty.i32], []);
  const [src, rows, cols, dst] = [0, 1, 2, 3];
  const L = { r: f.local(Ty.i32), c: f.local(Ty.i32), s: f.local(Ty.i32), d: f.local(Ty.i32), rs: f.local(Ty.i32), ds: f.local(Ty.i32) };
  const v = Array.from({ length: 4 }, () => f.local(Ty.v128));
  const t = Array.from({ length: 4 }, () => f.local(Ty.v128));
  const block: Code = [
    ...set(L.s, add(get(src), add(mul(get(L.r), get(L.rs)), mul(get(L.c), i32(4))))),
    ...set(L.d, add(get(dst), add(mul(get(L.c), get(L.ds)), mul(get(L.r), i32(4))))),
  ];
  for (let i = 0; i < 4; i++) block.push(...set(v[i], vload(i === 0 ? get(L.s) : add(get(L.s), mul(get(L.rs), i32(i))))));
  block.push(
    ...set(t[0], shuffle(get(v[0]), get(v[1]), lanes(0, 4, 1, 5))),
    ...set(t[1], shuffle(get(v[0]), get(v[1]), lanes(2, 6, 3, 7))),
    ...set(t[2], shuffle(get(v[2]), get(v[3]), lanes(0, 4, 1, 5))),
    ...set(t[3], shuffle(get(v[2]), get(v[3]), lanes(2, 6, 3, 7))),
  );
  const out = [shuffle(get(t[0]), get(t[2]), lanes(0, 1, 4, 5)), shuffle(get(t[0]), get(t[2]), lanes(2, 3, 6, 7)),
    shuffle(get(t[1]), get(t[3]), lanes(0, 1, 4, 5)), shuffle(get(t[1]), get(t[3]), lanes(2, 3, 6, 7))];
  out.forEach((o, i) => block.push(...vstore(i === 0 ? get(L.d) : add(get(L.d), mul(get(L.ds), i32(i))), o)));
  const whole = (n: number): Code => mul(ishrU(get(n), i32(2)), i32(4));
  f.body = [
    ...set(L.rs, mul(get(cols), i32(4))),
    ...set(L.ds, mul(get(rows), i32(4))),
    ...loop(L.c, i32(0), whole(cols), 4, loop(L.r, i32(0), whole(rows), 4, block)),
  ];
  return f;
}

/** The transpose kernel in `heap`, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function transposeKernels(heap: WebAssembly.Memory): Kernels | null {
  return kernelsIn(heap, 'transpose', () => [transposeFn()]);
}
