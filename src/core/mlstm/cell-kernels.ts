/**
 * The [T, T] and [T, dh] passes of the host mLSTM cell (cell-passes.ts) in WebAssembly SIMD over the wasm heap,
 * generated for one head width dh and head count nh (T is an argument). Every product and sum that the
 * JavaScript passes form in float64 is formed in float64 here too (f64x2, two lanes an instruction), from the
 * float32 operands promoted exactly, and rounded to float32 only where it is stored into a float32 tensor: the
 * decay weights (products of up to T factors), the row sums r that feed the normaliser and dr, and the row and
 * column sums of dlogD whose difference db cancels. So the kernels agree with the JavaScript to a rounding of
 * the stored float32 (mostly bit for bit), and the cell's time is left to its matMuls: at B = 8, T = 128 and
 * 4 heads of 16 one block's cell takes 1.9 ms forward and 4.8 ms backward, against 3.6 and 8.3 in JavaScript.
 *
 * The per-head state lives in float64 arrays of T at `w` (CELL_STATE's offsets): A, step and floor of the decay
 * (written by the caller), the decay row Drow, r, z, dr, and the dlogD sums row and col. Decay row t is
 * formed from row t - 1 in place, D[t, s] = D[t-1, s] step_t for s < t and D[t, t] = A_t: the same factors as
 * the JavaScript's running product, one multiply per weight, and rows are visited in order by every pass that
 * needs them. A weight below TINY is held at zero, as there, so that the running products never reach
 * denormals (slow on x86).
 */
import { dadd, dload, dstore, f64, highPair, joinPairs, promote } from '../host/simd/wasm-more.ts';
import {
  add, bin, f32, f64Lane, f64x2Add, f64x2Promote, fload, Fn, fstore, get, i32, lane, loop, mul, set, shl, sub, Ty, un,
  vbin, vconst, vload, vstore, vun, type Code,
} from '../host/simd/wasm.ts';

/** Below this a decay weight is zero, as in cell-passes.ts. */
export const TINY = 1e-300;

/** Byte offsets, in multiples of 8T, of the per-head float64 arrays in the state at `w`. */
export const CELL_STATE = { A: 0, step: 1, floor: 2, Drow: 3, r: 4, z: 5, dr: 6, row: 7, col: 8 } as const;
export const CELL_STATE_ARRAYS = 9;

const dmul = bin(0xa2);
const ddiv = bin(0xa3);
const dabs = un(0x99);
const dmax = bin(0xa5);
const dlt = bin(0x63);
const dgt = bin(0x64);
const dneg = un(0x9a);
const copysign = bin(0xa6);
const demote = un(0xb6);
/** `a` where cond is non-zero, else `b`. */
const select = (a: Code, b: Code, cond: Code): Code => [...a, ...b, ...cond, 0x1b];
const f64x2Splat = vun(0x14);
const f64x2Mul = vbin(0xf2);
const f64x2Div = vbin(0xf3);
const f64x2Lt = vbin(0x49);
const andNot = vbin(0x4f);
/** d with the lanes below TINY zeroed. */
const flush2 = (d: Code): Code => andNot(d, f64x2Lt(d, f64x2Splat(f64(TINY))));
/** The sum of an f64x2's two lanes. */
const dsum2 = (v: number): Code => dadd(f64Lane(get(v), 0), f64Lane(get(v), 1));

export interface CellWidths {
  readonly nh: number;
  readonly dh: number;
}

/**
 * The kernels for `w`, exported under the names of the passes they stand for; arguments are byte addresses
 * (tensors at their head's first column where rows are H wide), then T.
 */
export function cellFns(w: CellWidths): Fn[] {
  return [
    gatherFn(w, false), gatherFn(w, true), stabiliseFn(false), stabiliseFn(true), normaliseFn(w), outputGradFn(w), decayGradFn(), putFn(w),
  ];
}

function params<K extends string>(name: string, names: K[], types: Partial<Record<K, Ty>> = {}): { f: Fn; p: Record<K, number> } {
  const f = new Fn(name, names.map((k) => types[k] ?? Ty.i32), []);
  return { f, p: Object.fromEntries(names.map((k, i) => [k, i])) as Record<K, number> };
}

/** The float64 at index t (a local) of state array `a`. */
const stateAt = (p: { w: number; T: number }, a: keyof typeof CELL_STATE, t: number): Code =>
  add(add(get(p.w), mul(get(p.T), i32(8 * CELL_STATE[a]))), shl(get(t), i32(3)));

/** Zeroes `bytes` (a multiple of 4) at `at`: vectors, then floats. */
function zeroBytes(f: Fn, at: number, bytes: Code): Code {
  const o = f.local(Ty.i32);
  return [
    ...loop(o, i32(0), sub(bytes, i32(15)), 16, vstore(add(get(at), get(o)), vconst(0))),
    ...loop(o, get(o), bytes, 4, fstore(add(get(at), get(o)), f32(0))),
  ];
}

/**
 * gather(x, out, T) copies a head's [T, dh] block out of rows H wide; gatherT(x, out, T) writes it transposed,
 * [dh, T], one float a lane.
 */
function gatherFn({ nh, dh }: CellWidths, transposed: boolean): Fn {
  const { f, p } = params(transposed ? 'gatherT' : 'gather', ['x', 'out', 'T']);
  const L = { t: f.local(Ty.i32), src: f.local(Ty.i32), v: f.local(Ty.v128) };
  const body: Code = [...set(L.src, add(get(p.x), mul(get(L.t), i32(4 * nh * dh))))];
  for (let c = 0; c < dh; c += 4) {
    if (!transposed) {
      body.push(...vstore(add(get(p.out), mul(get(L.t), i32(4 * dh))), vload(get(L.src), 4 * c), 4 * c));
      continue;
    }
    body.push(...set(L.v, vload(get(L.src), 4 * c)));
    for (let k = 0; k < 4; k++) {
      body.push(...fstore(add(add(get(p.out), shl(get(L.t), i32(2))), mul(get(p.T), i32(4 * (c + k)))), lane(get(L.v), k)));
    }
  }
  f.body = loop(L.t, i32(0), get(p.T), 1, body);
  return f;
}

/**
 * Row t's decay weights in Drow from row t - 1's (see the header), each also handed to `vec` (two float64
 * pairs) or `one` (a float64) as it is formed: vectors of four columns, then
 * single ones below the diagonal, then the diagonal (A_t). The columns above it are zeroed in the float32 row
 * at `row`. Local o (the caller's) holds the column's byte offset while `vec` and `one` run.
 */
function decayRow(
  f: Fn, p: { w: number; T: number }, t: number, row: number, o: number,
  vec: (d0: number, d1: number) => Code, one: (d: number) => Code,
): Code {
  const L = { o, st: f.local(Ty.f64), stv: f.local(Ty.v128), d0: f.local(Ty.v128), d1: f.local(Ty.v128), d: f.local(Ty.f64), da: f.local(Ty.i32) };
  const dAt = (): Code => add(get(L.da), add(get(L.o), get(L.o)));
  const t4 = shl(get(t), i32(2));
  return [
    ...set(L.da, add(get(p.w), mul(get(p.T), i32(8 * CELL_STATE.Drow)))),
    ...set(L.st, dload(stateAt(p, 'step', t))),
    ...set(L.stv, f64x2Splat(get(L.st))),
    ...loop(L.o, i32(0), sub(t4, i32(12)), 16, [
      ...set(L.d0, flush2(f64x2Mul(vload(dAt()), get(L.stv)))),
      ...set(L.d1, flush2(f64x2Mul(vload(dAt(), 16), get(L.stv)))),
      ...vstore(dAt(), get(L.d0)),
      ...vstore(dAt(), get(L.d1), 16),
      ...vec(L.d0, L.d1),
    ]),
    ...loop(L.o, get(L.o), t4, 4, [
      ...set(L.d, dmul(dload(dAt()), get(L.st))),
      ...set(L.d, select(f64(0), get(L.d), dlt(get(L.d), f64(TINY)))),
      ...dstore(dAt(), get(L.d)),
      ...one(L.d),
    ]),
    ...set(L.d, dload(stateAt(p, 'A', t))),
    ...dstore(dAt(), get(L.d)),
    ...one(L.d),
    ...loop(L.o, add(get(L.o), i32(4)), sub(mul(get(p.T), i32(4)), i32(12)), 16, vstore(add(get(row), get(L.o)), vconst(0))),
    ...loop(L.o, get(L.o), mul(get(p.T), i32(4)), 4, fstore(add(get(row), get(L.o)), f32(0))),
  ];
}

/** Stores the four lanes of v into column t of a [T, T] matrix at m, rows o/4 .. o/4 + 3. */
function scatterColumn(m: number, T: number, t: number, o: number, v: Code): Code {
  const out: Code = [];
  for (let k = 0; k < 4; k++) {
    const at = add(add(get(m), shl(get(t), i32(2))), mul(get(T), add(get(o), i32(4 * k))));
    out.push(...fstore(at, lane(v, k)));
  }
  return out;
}

/**
 * stabilise(P, w, T) / stabiliseT(P, ST, w, T): S = P * D in place over [T, T] (zero above the diagonal), r
 * its row sums and z = max(|r|, floor); stabiliseT also writes S^T into ST (zeroed first).
 */
function stabiliseFn(transposed: boolean): Fn {
  const { f, p } = params(transposed ? 'stabiliseT' : 'stabilise', transposed ? ['P', 'ST', 'w', 'T'] : ['P', 'w', 'T']);
  const L = { t: f.local(Ty.i32), o: f.local(Ty.i32), row: f.local(Ty.i32), s0: f.local(Ty.v128), s1: f.local(Ty.v128), r0: f.local(Ty.v128), r1: f.local(Ty.v128), r: f.local(Ty.f64), s: f.local(Ty.f64), sv: f.local(Ty.v128) };
  const o = L.o;
  const vec = (d0: number, d1: number): Code => [
    ...set(L.sv, vload(add(get(L.row), get(o)))),
    ...set(L.s0, f64x2Mul(f64x2Promote(get(L.sv)), get(d0))),
    ...set(L.s1, f64x2Mul(f64x2Promote(highPair(get(L.sv))), get(d1))),
    ...set(L.r0, f64x2Add(get(L.r0), get(L.s0))),
    ...set(L.r1, f64x2Add(get(L.r1), get(L.s1))),
    ...set(L.sv, joinPairs(get(L.s0), get(L.s1))),
    ...vstore(add(get(L.row), get(o)), get(L.sv)),
    ...(transposed ? scatterColumn(p.ST, p.T, L.t, o, get(L.sv)) : []),
  ];
  const one = (d: number): Code => [
    ...set(L.s, dmul(promote(fload(add(get(L.row), get(o)))), get(d))),
    ...set(L.r, dadd(get(L.r), get(L.s))),
    ...fstore(add(get(L.row), get(o)), demote(get(L.s))),
    ...(transposed ? fstore(add(add(get(p.ST), shl(get(L.t), i32(2))), mul(get(p.T), get(o))), demote(get(L.s))) : []),
  ];
  const rowBody = decayRow(f, p, L.t, L.row, o, vec, one);
  f.body = [
    ...(transposed ? zeroBytes(f, p.ST, mul(mul(get(p.T), get(p.T)), i32(4))) : []),
    ...loop(L.t, i32(0), get(p.T), 1, [
      ...set(L.row, add(get(p.P), mul(mul(get(L.t), get(p.T)), i32(4)))),
      ...set(L.r0, vconst(0)),
      ...set(L.r1, vconst(0)),
      ...set(L.r, f64(0)),
      ...rowBody,
      ...set(L.r, dadd(dadd(get(L.r), dsum2(L.r0)), dsum2(L.r1))),
      ...dstore(stateAt(p, 'r', L.t), get(L.r)),
      ...dstore(stateAt(p, 'z', L.t), dmax(dabs(get(L.r)), dload(stateAt(p, 'floor', L.t)))),
    ]),
  ];
  return f;
}

/** normalise(num, h, w, T): h's head rows (H wide) = num [T, dh] / z, in float64 before rounding. */
function normaliseFn({ nh, dh }: CellWidths): Fn {
  const { f, p } = params('normalise', ['num', 'h', 'w', 'T']);
  const L = { t: f.local(Ty.i32), inv: f.local(Ty.v128), v: f.local(Ty.v128) };
  const body: Code = [...set(L.inv, f64x2Splat(ddiv(f64(1), dload(stateAt(p, 'z', L.t)))))];
  for (let c = 0; c < dh; c += 4) {
    body.push(
      ...set(L.v, vload(add(get(p.num), mul(get(L.t), i32(4 * dh))), 4 * c)),
      ...vstore(
        add(get(p.h), mul(get(L.t), i32(4 * nh * dh))),
        joinPairs(f64x2Mul(f64x2Promote(get(L.v)), get(L.inv)), f64x2Mul(f64x2Promote(highPair(get(L.v))), get(L.inv))),
        4 * c,
      ),
    );
  }
  f.body = loop(L.t, i32(0), get(p.T), 1, body);
  return f;
}

/**
 * outputGrad(g, h, gz, w, T): gz [T, dh] = g / z from the head's rows of dh~ (g) and h~, and
 * dr = -rowsum(g h~) / z sign(r) where |r| > floor (else 0: the floor is the normaliser, r has no influence).
 */
function outputGradFn({ nh, dh }: CellWidths): Fn {
  const { f, p } = params('outputGrad', ['g', 'h', 'gz', 'w', 'T']);
  const L = { t: f.local(Ty.i32), z: f.local(Ty.v128), gv: f.local(Ty.v128), hv: f.local(Ty.v128), acc: f.local(Ty.v128), r: f.local(Ty.f64) };
  const rowAt = (base: number, width: number): Code => add(get(base), mul(get(L.t), i32(4 * width)));
  const body: Code = [...set(L.z, f64x2Splat(dload(stateAt(p, 'z', L.t)))), ...set(L.acc, vconst(0))];
  for (let c = 0; c < dh; c += 4) {
    body.push(
      ...set(L.gv, vload(rowAt(p.g, nh * dh), 4 * c)),
      ...set(L.hv, vload(rowAt(p.h, nh * dh), 4 * c)),
      ...set(L.acc, f64x2Add(get(L.acc), f64x2Mul(f64x2Promote(get(L.gv)), f64x2Promote(get(L.hv))))),
      ...set(L.acc, f64x2Add(get(L.acc), f64x2Mul(f64x2Promote(highPair(get(L.gv))), f64x2Promote(highPair(get(L.hv)))))),
      ...vstore(rowAt(p.gz, dh), joinPairs(f64x2Div(f64x2Promote(get(L.gv)), get(L.z)), f64x2Div(f64x2Promote(highPair(get(L.gv))), get(L.z))), 4 * c),
    );
  }
  const z = f64Lane(get(L.z), 0);
  body.push(
    ...set(L.r, dload(stateAt(p, 'r', L.t))),
    ...dstore(
      stateAt(p, 'dr', L.t),
      select(dmul(dneg(ddiv(dsum2(L.acc), z)), copysign(f64(1), get(L.r))), f64(0), dgt(dabs(get(L.r)), dload(stateAt(p, 'floor', L.t)))),
    ),
  );
  f.body = loop(L.t, i32(0), get(p.T), 1, body);
  return f;
}

/**
 * decayGrad(dP, S, dPT, w, T), with dP holding gz v^T on entry: dS = dP + dr (row-wise), then in place
 * dP = dS * D (zero above the diagonal) and dP^T into dPT (zeroed first); row and col take the row and column
 * sums of dlogD = dS * S in float64.
 */
function decayGradFn(): Fn {
  const { f, p } = params('decayGrad', ['dP', 'S', 'dPT', 'w', 'T']);
  const L = {
    t: f.local(Ty.i32), row: f.local(Ty.i32), srow: f.local(Ty.i32), ca: f.local(Ty.i32), dr: f.local(Ty.f64), drv: f.local(Ty.v128),
    g0: f.local(Ty.v128), g1: f.local(Ty.v128), sv: f.local(Ty.v128), l0: f.local(Ty.v128), l1: f.local(Ty.v128), r0: f.local(Ty.v128),
    r1: f.local(Ty.v128), rs: f.local(Ty.f64), g: f.local(Ty.f64), l: f.local(Ty.f64), u: f.local(Ty.i32), o: f.local(Ty.i32),
  };
  const o = L.o;
  const colAt = (): Code => add(get(L.ca), add(get(o), get(o)));
  const vec = (d0: number, d1: number): Code => [
    ...set(L.sv, vload(add(get(L.row), get(o)))),
    ...set(L.g0, f64x2Add(f64x2Promote(get(L.sv)), get(L.drv))),
    ...set(L.g1, f64x2Add(f64x2Promote(highPair(get(L.sv))), get(L.drv))),
    ...set(L.sv, vload(add(get(L.srow), get(o)))),
    ...set(L.l0, f64x2Mul(get(L.g0), f64x2Promote(get(L.sv)))),
    ...set(L.l1, f64x2Mul(get(L.g1), f64x2Promote(highPair(get(L.sv))))),
    ...set(L.r0, f64x2Add(get(L.r0), get(L.l0))),
    ...set(L.r1, f64x2Add(get(L.r1), get(L.l1))),
    ...vstore(colAt(), f64x2Add(vload(colAt()), get(L.l0))),
    ...vstore(colAt(), f64x2Add(vload(colAt(), 16), get(L.l1)), 16),
    ...set(L.sv, joinPairs(f64x2Mul(get(L.g0), get(d0)), f64x2Mul(get(L.g1), get(d1)))),
    ...vstore(add(get(L.row), get(o)), get(L.sv)),
    ...scatterColumn(p.dPT, p.T, L.t, o, get(L.sv)),
  ];
  const one = (d: number): Code => [
    ...set(L.g, dadd(promote(fload(add(get(L.row), get(o)))), get(L.dr))),
    ...set(L.l, dmul(get(L.g), promote(fload(add(get(L.srow), get(o)))))),
    ...set(L.rs, dadd(get(L.rs), get(L.l))),
    ...dstore(colAt(), dadd(dload(colAt()), get(L.l))),
    ...set(L.g, dmul(get(L.g), get(d))),
    ...fstore(add(get(L.row), get(o)), demote(get(L.g))),
    ...fstore(add(add(get(p.dPT), shl(get(L.t), i32(2))), mul(get(p.T), get(o))), demote(get(L.g))),
  ];
  const rowBody = decayRow(f, p, L.t, L.row, o, vec, one);
  f.body = [
    ...zeroBytes(f, p.dPT, mul(mul(get(p.T), get(p.T)), i32(4))),
    ...set(L.ca, add(get(p.w), mul(get(p.T), i32(8 * CELL_STATE.col)))),
    ...loop(L.u, i32(0), get(p.T), 1, dstore(add(get(L.ca), shl(get(L.u), i32(3))), f64(0))),
    ...loop(L.t, i32(0), get(p.T), 1, [
      ...set(L.row, add(get(p.dP), mul(mul(get(L.t), get(p.T)), i32(4)))),
      ...set(L.srow, add(get(p.S), mul(mul(get(L.t), get(p.T)), i32(4)))),
      ...set(L.dr, dload(stateAt(p, 'dr', L.t))),
      ...set(L.drv, f64x2Splat(get(L.dr))),
      ...set(L.r0, vconst(0)),
      ...set(L.r1, vconst(0)),
      ...set(L.rs, f64(0)),
      ...rowBody,
      ...dstore(stateAt(p, 'row', L.t), dadd(dadd(get(L.rs), dsum2(L.r0)), dsum2(L.r1))),
    ]),
  ];
  return f;
}

/** put(from, to, stride, scale, T): the rows of from [T, dh] times scale (in float64) into rows `stride` bytes apart. */
function putFn({ dh }: CellWidths): Fn {
  const { f, p } = params('put', ['from', 'to', 'stride', 'scale', 'T'], { scale: Ty.f64 });
  const L = { t: f.local(Ty.i32), c: f.local(Ty.i32), v: f.local(Ty.v128), s: f.local(Ty.v128) };
  const src = (): Code => add(add(get(p.from), mul(get(L.t), i32(4 * dh))), get(L.c));
  f.body = [
    ...set(L.s, f64x2Splat(get(p.scale))),
    ...loop(L.t, i32(0), get(p.T), 1, loop(L.c, i32(0), i32(4 * dh), 16, [
      ...set(L.v, vload(src())),
      ...vstore(
        add(add(get(p.to), mul(get(L.t), get(p.stride))), get(L.c)),
        joinPairs(f64x2Mul(f64x2Promote(get(L.v)), get(L.s)), f64x2Mul(f64x2Promote(highPair(get(L.v))), get(L.s))),
      ),
    ])),
  ];
  return f;
}
