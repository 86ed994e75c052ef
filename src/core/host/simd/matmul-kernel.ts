/**
 * A matMul for few rows in WebAssembly SIMD over the wasm heap, in place: y [B, 4 N4] = x [B, K] w [K, 4 N4],
 * with w in panels (panelWeights). Every output is accumulated from 0 over k = 0 .. K-1 with a separate multiply
 * and add, whatever the tile it falls in, so a row's result never depends on how many rows are multiplied with
 * it (and equals the sequential sum XNNPACK's wasm SIMD GEMM computes).
 */
import { kernelsIn, type Kernels } from './instance.ts';
import { add, Fn, geS, get, i32, loop, mul, set, sub, Ty, vadd, vconst, vload, vloadSplat, vmul, vstore, when, type Code } from './wasm.ts';

/** Rows and four-column vectors per tile: 2 x 4 accumulators plus 4 weight vectors fit the 16 SIMD registers of x64. */
const ROWS = 2;
const VECS = 4;

/** The width in vectors of the tile that starts at vector v of a row of w [K, 4 N4]: VECS, then pairs, then one. */
function tileWidth(v: number, N4: number): number {
  const full = Math.floor(N4 / VECS) * VECS;
  if (v < full) return VECS;
  return v + 1 < N4 ? 2 : 1;
}

/**
 * The panel layout of a matrix w [K, N] (row-major, N a multiple of 4): columns in groups of 4 VECS (16), each
 * group's [K, 16] contiguous, then what is left in pairs of vectors as [K, 8], then a last vector as [K, 4]. A
 * tile then streams its weights in order, and the panel of the vector at column 4c always starts at float 4cK.
 */
export function panelWeights(w: Float32Array, K: number, N: number, out: Float32Array, at: number): void {
  const N4 = N / 4;
  for (let v = 0; v < N4; ) {
    const T = tileWidth(v, N4);
    const base = at + 4 * v * K;
    for (let k = 0; k < K; k++) for (let j = 0; j < 4 * T; j++) out[base + 4 * T * k + j] = w[k * N + 4 * v + j];
    v += T;
  }
}

/**
 * mm(x, xs, w, y, ys, K, N4, B): for rows r < B and columns c < 4 N4, y[r ys + c] = sum over k of x[r xs + k]
 * w[k, c], w [K, 4 N4] in panels (panelWeights), strides in floats.
 */
function matmulFn(): Fn {
  const f = new Fn('mm', Array(8).fill(Ty.i32), []);
  const [x, xs, w, y, ys, K, N4, B] = [0, 1, 2, 3, 4, 5, 6, 7];
  const L = {
    r: f.local(Ty.i32), c: f.local(Ty.i32), k: f.local(Ty.i32),
    xs4: f.local(Ty.i32), ys4: f.local(Ty.i32), wp: f.local(Ty.i32), yp: f.local(Ty.i32),
  };
  const xp = Array.from({ length: ROWS }, () => f.local(Ty.i32));
  const acc = Array.from({ length: ROWS * VECS }, () => f.local(Ty.v128));
  const wv = Array.from({ length: VECS }, () => f.local(Ty.v128));
  const s = f.local(Ty.v128);

  /** Rows r .. r+R-1, vectors c .. c+T-1. */
  const tile = (R: number, T: number): Code => {
    const code: Code = [
      ...set(xp[0], add(get(x), mul(get(L.r), get(L.xs4)))),
      ...set(L.wp, add(get(w), mul(mul(get(L.c), get(K)), i32(16)))),
    ];
    for (let i = 1; i < R; i++) code.push(...set(xp[i], add(get(xp[i - 1]), get(L.xs4))));
    for (let a = 0; a < R * T; a++) code.push(...set(acc[a], vconst(0)));
    const step: Code = [];
    for (let t = 0; t < T; t++) step.push(...set(wv[t], vload(get(L.wp), 16 * t)));
    for (let i = 0; i < R; i++) {
      step.push(...set(s, vloadSplat(get(xp[i]))));
      for (let t = 0; t < T; t++) step.push(...set(acc[i * T + t], vadd(get(acc[i * T + t]), vmul(get(s), get(wv[t])))));
      step.push(...set(xp[i], add(get(xp[i]), i32(4))));
    }
    step.push(...set(L.wp, add(get(L.wp), i32(16 * T))));
    code.push(...loop(L.k, i32(0), get(K), 1, step));
    code.push(...set(L.yp, add(add(get(y), mul(get(L.r), get(L.ys4))), mul(get(L.c), i32(16)))));
    for (let i = 0; i < R; i++) {
      for (let t = 0; t < T; t++) code.push(...vstore(get(L.yp), get(acc[i * T + t]), 16 * t));
      if (i + 1 < R) code.push(...set(L.yp, add(get(L.yp), get(L.ys4))));
    }
    return code;
  };

  /** Every row for the vectors at c: pairs of rows, then the odd one out. */
  const rows = (T: number): Code => [
    ...loop(L.r, i32(0), sub(get(B), i32(ROWS - 1)), ROWS, tile(ROWS, T)),
    ...when(geS(sub(get(B), i32(1)), get(L.r)), tile(1, T)),
  ];

  f.body = [
    ...set(L.xs4, mul(get(xs), i32(4))),
    ...set(L.ys4, mul(get(ys), i32(4))),
    // As tileWidth: the rest past the groups of VECS goes in pairs (a single vector's tile is mostly loop overhead).
    ...loop(L.c, i32(0), sub(get(N4), i32(VECS - 1)), VECS, rows(VECS)),
    ...loop(L.c, get(L.c), sub(get(N4), i32(1)), 2, rows(2)),
    ...loop(L.c, get(L.c), get(N4), 1, rows(1)),
  ];
  return f;
}

/**
 * pack(w, ws, out, K, N4): the first 4 N4 columns of w [K, ws] (row stride ws floats) into out in the panel layout
 * of panelWeights, for matrices packed on every call (a training step's operands) rather than once.
 */
function packFn(): Fn {
  const f = new Fn('pack', Array(5).fill(Ty.i32), []);
  const [w, ws, out, K, N4] = [0, 1, 2, 3, 4];
  const L = { c: f.local(Ty.i32), k: f.local(Ty.i32), src: f.local(Ty.i32), dst: f.local(Ty.i32), ws4: f.local(Ty.i32) };
  const panels = (T: number): Code => {
    const step: Code = [];
    for (let t = 0; t < T; t++) step.push(...vstore(get(L.dst), vload(get(L.src), 16 * t), 16 * t));
    step.push(...set(L.src, add(get(L.src), get(L.ws4))), ...set(L.dst, add(get(L.dst), i32(16 * T))));
    return [
      ...set(L.src, add(get(w), mul(get(L.c), i32(16)))),
      ...set(L.dst, add(get(out), mul(mul(get(L.c), get(K)), i32(16)))),
      ...loop(L.k, i32(0), get(K), 1, step),
    ];
  };
  f.body = [
    ...set(L.ws4, mul(get(ws), i32(4))),
    ...loop(L.c, i32(0), sub(get(N4), i32(VECS - 1)), VECS, panels(VECS)),
    ...loop(L.c, get(L.c), sub(get(N4), i32(1)), 2, panels(2)),
    ...loop(L.c, get(L.c), get(N4), 1, panels(1)),
  ];
  return f;
}

/** The matMul and pack kernels in `heap`, compiled on first use; null where WebAssembly SIMD is unavailable. */
export function matmulKernels(heap: WebAssembly.Memory): Kernels | null {
  return kernelsIn(heap, 'matmul', () => [matmulFn(), packFn()]);
}
