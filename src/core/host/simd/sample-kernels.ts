/**
 * The sampler's passes over a row of logits in WebAssembly SIMD. The row is padded with -Infinity to whole
 * blocks of BLOCK floats; per block the passes keep a maximum (a bound for top-k) and a float64 sum of the
 * tempered weights (so an inverse-CDF draw walks one block, not the row); histograms of tempered log-weight
 * find top-p and large top-k thresholds without sorting the vocabulary.
 */
import { expSumAdd, expSumHalves, expSumStep, expSumTotal, rowExpSum } from './rows.ts';
import { VMath } from './vmath.ts';
import {
  add, f32, fload, fstore, Fn, get, i32, i32x4Shl, lane, loop, set, shl, shuffle, splat, sub, Ty, vadd, vconst, veq, vload, vmul,
  vpmax, vpmin, vselect, vstore, vsub, when, type Code,
} from './wasm.ts';
import {
  dadd, dload, dstore, f64, i32Lane, i32x4Add, i32x4Bitmask, i32x4Eq, i32x4GtS, i32x4LeS, i32x4SplatOf, iand, ictz, ieq, igtS,
  ishrU, istore, promote, vand, vge, vgt, vor, whileDo,
} from './wasm-more.ts';

/** Floats per block: 16 vectors. */
export const BLOCK = 64;
/** Buckets of a histogram; the last one also holds everything beyond (and NaN). */
export const BUCKETS = 512;

/** The index vector (j, j+1, j+2, j+3) of the first four floats. */
const IOTA = (): Code => [0xfd, 0x0c, ...[0, 1, 2, 3].flatMap((n) => Array.from(new Uint8Array(Int32Array.of(n).buffer)))];

/** Byte lanes of a vector's upper half moved down, and of its second float moved to the first. */
const UPPER_HALF = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
const SECOND = [4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7];

/**
 * blockMax(L, nb, BM) -> max: BM[b] = the largest float of block b (NaN never wins, so a block of NaN and
 * -Infinity gives -Infinity), and the row's maximum. Lanes are reduced with pmax and shuffles, never with
 * f32.max: V8 compiles that to branches on NaN and signed zeros, which mispredict on fresh rows.
 */
function blockMax(): Fn {
  const f = new Fn('blockMax', [Ty.i32, Ty.i32, Ty.i32], [Ty.f32]);
  const [L, nb, BM] = [0, 1, 2];
  const b = f.local(Ty.i32);
  const at = f.local(Ty.i32);
  const best = f.local(Ty.v128);
  const acc = [f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128), f.local(Ty.v128)];
  const low = f.local(Ty.v128);
  // Four running maxima: one would wait on its own latency at every vector.
  const body: Code = acc.flatMap((a, k) => set(a, vpmax(get(a), vload(get(at), 16 * k))));
  f.body = [
    ...set(best, vconst(-Infinity)),
    ...set(low, vconst(-Infinity)),
    ...loop(b, i32(0), get(nb), 1, [
      ...acc.flatMap((a) => set(a, get(low))),
      ...loop(at, add(get(L), shl(get(b), i32(8))), add(get(L), shl(add(get(b), i32(1)), i32(8))), 64, body),
      ...set(acc[0], vpmax(vpmax(get(acc[0]), get(acc[1])), vpmax(get(acc[2]), get(acc[3])))),
      ...set(acc[0], vpmax(get(acc[0]), shuffle(get(acc[0]), get(acc[0]), UPPER_HALF))),
      ...set(acc[0], vpmax(get(acc[0]), shuffle(get(acc[0]), get(acc[0]), SECOND))),
      ...fstore(add(get(BM), shl(get(b), i32(2))), lane(get(acc[0]), 0)),
      ...set(best, vpmax(get(best), get(acc[0]))),
    ]),
    ...lane(get(best), 0),
  ];
  return f;
}

/** Options of the weights pass. */
export interface WeightsKind {
  /** Keep only the ids of a cut (l > a, or l = a with j <= jt); the others weigh 0. */
  readonly cut: boolean;
  /**
   * Also return rowExpSum's sum over the first nMirror vectors: from the weights themselves when the caller
   * passes invT = 1 (`mirror`), from a second exp of l - max otherwise (`ownExp`).
   */
  readonly mirror: boolean;
  readonly ownExp?: boolean;
}

/** The lanes of l in a cut: l > a, or l = a with id (idx) <= jt. The argument l must be a local's value. */
const inCut = (l: Code, a: number, idx: number, jt: number): Code =>
  vor(vgt(l, get(a)), vand(veq(l, get(a)), i32x4LeS(get(idx), get(jt))));

/** The exported name of a weights variant. */
export const weightsName = (kind: WeightsKind): string =>
  `weights${kind.cut ? 'Cut' : ''}${kind.mirror ? (kind.ownExp ? 'LogSumExp' : 'Mirror') : ''}`;

/** 2^23: adding it to a float in [0, 2^22] rounds that float to an integer, which the sum's low bits then hold. */
const MAGIC = 8388608;
const MAGIC_BITS = 0x4b000000;

/**
 * Histogram buckets in every pass that uses them, from the same code so that all agree: with x = (l - max) s
 * and y = min(BUCKETS - 1, x c) (c < 0, so y >= 0 grows as logits fall; NaN gives BUCKETS - 1), the bucket is
 * y rounded to an integer, kept as the bits of y + MAGIC (MAGIC_BITS + bucket). Both steps are monotone in l,
 * so a bucket never holds a logit above one of an earlier bucket.
 */
class Bucketer {
  private readonly m: number;
  private readonly s: number;
  private readonly c: number;
  private readonly top: number;
  private readonly magic: number;

  constructor(f: Fn) {
    this.m = f.local(Ty.v128);
    this.s = f.local(Ty.v128);
    this.c = f.local(Ty.v128);
    this.top = f.local(Ty.v128);
    this.magic = f.local(Ty.v128);
  }

  /** Sets the constants from the function's float parameters max, s and c. */
  setup(max: number, s: number, c: number): Code {
    return [
      ...set(this.m, splat(get(max))),
      ...set(this.s, splat(get(s))),
      ...set(this.c, splat(get(c))),
      ...set(this.top, vconst(BUCKETS - 1)),
      ...set(this.magic, vconst(MAGIC)),
    ];
  }

  /** MAGIC_BITS + bucket, per lane of the logits l. */
  bits(l: Code): Code {
    const x = vmul(vsub(l, get(this.m)), get(this.s));
    // pmin(top, y) = y < top ? y : top, so a NaN y gives top.
    return vadd(vpmin(get(this.top), vmul(x, get(this.c))), get(this.magic));
  }
}

/** A vector of MAGIC_BITS + the i32 parameter `bucket`, to compare with Bucketer.bits. */
const bucketBits = (bucket: number): Code => i32x4SplatOf(add(get(bucket), i32(MAGIC_BITS)));

/**
 * Adds the four lanes of w (1 each when w is null) into four float64 histograms of BUCKETS, one per lane (so
 * that consecutive adds to a bucket do not wait on each other), at the lanes' buckets, bi holding Bucketer.bits.
 * `base` holds splat(H - 8 MAGIC_BITS) (wrapping), so base + 8 bi is H + 8 bucket; the lane's histogram is the
 * load's and store's offset.
 */
function scatter(base: number, bi: number, w: number | null, addrs: number, addr: number): Code {
  const out: Code = [...set(addrs, i32x4Add(get(base), i32x4Shl(get(bi), 3)))];
  for (let k = 0; k < 4; k++) {
    const weight = w === null ? f64(1) : promote(lane(get(w), k));
    const offset = k * BUCKETS * 8;
    out.push(...set(addr, i32Lane(get(addrs), k)), ...dstore(get(addr), dadd(dload(get(addr), offset), weight), offset));
  }
  return out;
}

/**
 * weights(L, nv, max, invT, W, S[, a, jt][, nMirror]) -> mirror sum or 0: W[j] = e^((L[j] - max) invT) in
 * float32 (0 outside the cut; below e^-87.3, float32 exp's floor of about 1e-38, which only matters in that
 * -Infinity logits must never be drawn: the walk skips them), S[b] = the float64 sum of block b's W, lanes
 * added as rowExpSum adds them. The mirror adds the same promoted halves as the block sums, in rowExpSum's
 * order, over the vectors before nMirror.
 */
function weights(kind: WeightsKind): Fn {
  const params = [Ty.i32, Ty.i32, Ty.f32, Ty.f32, Ty.i32, Ty.i32];
  const [L, nv, max, invT, W, S] = [0, 1, 2, 3, 4, 5];
  const next = (t: Ty): number => params.push(t) - 1;
  const a = kind.cut ? next(Ty.f32) : -1;
  const jt = kind.cut ? next(Ty.i32) : -1;
  const nMirror = kind.mirror ? next(Ty.i32) : -1;
  const f = new Fn(weightsName(kind), params, [Ty.f64]);
  const at = f.local(Ty.i32);
  const off = f.local(Ty.i32);
  const m = f.local(Ty.v128);
  const it = f.local(Ty.v128);
  const e = f.local(Ty.v128);
  const w = f.local(Ty.v128);
  const p1 = f.local(Ty.v128);
  const p2 = f.local(Ty.v128);
  const lo = f.local(Ty.v128);
  const hi = f.local(Ty.v128);
  const blo = f.local(Ty.v128);
  const bhi = f.local(Ty.v128);
  const idx = f.local(Ty.v128);
  const va = f.local(Ty.v128);
  const vjt = f.local(Ty.v128);
  const l = f.local(Ty.v128);
  const zero = f.local(Ty.v128);
  const e1 = f.local(Ty.v128);
  const vm = new VMath(f);
  const vector = (mirror: boolean): Code => {
    const sums: Code = kind.ownExp
      ? [
          ...(kind.cut ? [...set(w, vand(get(e), inCut(get(l), va, idx, vjt))), ...set(idx, i32x4Add(get(idx), i32x4SplatOf(i32(4))))] : set(w, get(e))),
          ...vstore(add(get(W), get(off)), get(w)),
          ...expSumStep(blo, bhi, w),
          ...(mirror ? [...set(e1, vm.exp(vsub(get(l), get(m)))), ...expSumStep(lo, hi, e1)] : []),
        ]
      : kind.cut
      ? [
          ...set(w, vand(get(e), inCut(get(l), va, idx, vjt))),
          ...set(idx, i32x4Add(get(idx), i32x4SplatOf(i32(4)))),
          ...vstore(add(get(W), get(off)), get(w)),
          ...expSumHalves(w, p1, p2),
          ...expSumAdd(blo, bhi, p1, p2),
          ...(mirror ? expSumStep(lo, hi, e) : []),
        ]
      : [
          ...vstore(add(get(W), get(off)), get(e)),
          ...expSumHalves(e, p1, p2),
          ...expSumAdd(blo, bhi, p1, p2),
          ...(mirror ? expSumAdd(lo, hi, p1, p2) : []),
        ];
    return [
      ...set(off, sub(get(at), get(L))),
      ...set(l, vload(get(at))),
      ...set(e, vm.exp(vmul(vsub(get(l), get(m)), get(it)))),
      ...sums,
      // The block's last vector: store its sum, start the next.
      ...when(ieq(iand(get(off), i32(BLOCK * 4 - 1)), i32(BLOCK * 4 - 16)), [
        ...dstore(add(get(S), shl(ishrU(get(off), i32(8)), i32(3))), expSumTotal(blo, bhi)),
        ...set(blo, get(zero)),
        ...set(bhi, get(zero)),
      ]),
    ];
  };
  f.body = [
    ...set(m, splat(get(max))),
    ...set(it, splat(get(invT))),
    ...set(zero, vconst(0)),
    ...set(lo, get(zero)),
    ...set(hi, get(zero)),
    ...set(blo, get(zero)),
    ...set(bhi, get(zero)),
    ...(kind.cut ? [...set(va, splat(get(a))), ...set(vjt, i32x4SplatOf(get(jt))), ...set(idx, IOTA())] : []),
    ...set(at, get(L)),
    ...(kind.mirror ? loop(at, get(L), add(get(L), shl(get(nMirror), i32(4))), 16, vector(true)) : []),
    ...loop(at, get(at), add(get(L), shl(get(nv), i32(4))), 16, vector(false)),
    ...(kind.mirror ? expSumTotal(lo, hi) : f64(0)),
  ];
  return f;
}

/**
 * histogramMass(L, W, nv, max, s, c, H): adds every W into H by its Bucketer bucket. No branch: on rows whose
 * nucleus spans many tokens a per-vector test mispredicts more often than the scatter costs.
 */
function histogramMass(): Fn {
  const f = new Fn('histogramMass', [Ty.i32, Ty.i32, Ty.i32, Ty.f32, Ty.f32, Ty.f32, Ty.i32], []);
  const [L, W, nv, max, s, c, H] = [0, 1, 2, 3, 4, 5, 6];
  const at = f.local(Ty.i32);
  const addr = f.local(Ty.i32);
  const bi = f.local(Ty.v128);
  const w = f.local(Ty.v128);
  const base = f.local(Ty.v128);
  const addrs = f.local(Ty.v128);
  const bk = new Bucketer(f);
  f.body = [
    ...set(base, i32x4SplatOf(sub(get(H), i32(MAGIC_BITS * 8)))),
    ...bk.setup(max, s, c),
    ...loop(at, i32(0), shl(get(nv), i32(4)), 16, [
      ...set(bi, bk.bits(vload(add(get(L), get(at))))),
      ...set(w, vload(add(get(W), get(at)))),
      ...scatter(base, bi, w, addrs, addr),
    ]),
  ];
  return f;
}

/**
 * histogram(L, nv, max, s, c, cutB, H): for every vector with a lane in a bucket <= cutB, adds 1 per lane into
 * H[lane][bucket] (Bucketer's buckets). Buckets <= cutB are complete; the others are partial.
 */
function histogram(): Fn {
  const f = new Fn('histogram', [Ty.i32, Ty.i32, Ty.f32, Ty.f32, Ty.f32, Ty.i32, Ty.i32], []);
  const [L, nv, max, s, c, cutB, H] = [0, 1, 2, 3, 4, 5, 6];
  const at = f.local(Ty.i32);
  const addr = f.local(Ty.i32);
  const cut = f.local(Ty.v128);
  const bi = f.local(Ty.v128);
  const base = f.local(Ty.v128);
  const addrs = f.local(Ty.v128);
  const bk = new Bucketer(f);
  f.body = [
    ...set(base, i32x4SplatOf(sub(get(H), i32(MAGIC_BITS * 8)))),
    ...bk.setup(max, s, c),
    ...set(cut, bucketBits(cutB)),
    ...loop(at, i32(0), shl(get(nv), i32(4)), 16, [
      ...set(bi, bk.bits(vload(add(get(L), get(at))))),
      ...when(i32x4Bitmask(i32x4LeS(get(bi), get(cut))), scatter(base, bi, null, addrs, addr)),
    ]),
  ];
  return f;
}

/** The code a collecting pass is made of; every part may use the local `at` (the vector's byte offset in L). */
interface CollectorParts {
  readonly setup: Code;
  readonly mask: Code;
  readonly perVector?: Code;
  /** Runs after the last vector of each block of BLOCK floats. */
  readonly blockEnd?: Code;
}

/**
 * A pass over the row appending the ids whose lanes `mask` marks to ids, in id order, with their logits to
 * ls and (when W is not 0) their weights to ws: the caller then reads three short arrays instead of
 * scattered places of the row. Its parameters start (L, W, nv, ids, ls, ws, cap); returns the count, or
 * stops early (with a count above cap) once more than cap are found. `perVector` runs after each vector's
 * mask. One flat loop: V8 compiles it tighter than a loop of blocks.
 */
function collector(name: string, params: Ty[], parts: (f: Fn, at: number) => CollectorParts): Fn {
  const f = new Fn(name, [Ty.i32, Ty.i32, Ty.i32, Ty.i32, Ty.i32, Ty.i32, Ty.i32, ...params], [Ty.i32]);
  const [L, W, nv, ids, ls, ws, cap] = [0, 1, 2, 3, 4, 5, 6];
  const at = f.local(Ty.i32);
  const bits = f.local(Ty.i32);
  const n = f.local(Ty.i32);
  const off = f.local(Ty.i32);
  const slot = f.local(Ty.i32);
  const { setup, mask, perVector = [], blockEnd } = parts(f, at);
  f.body = [
    ...setup,
    ...set(n, i32(0)),
    ...loop(at, i32(0), shl(get(nv), i32(4)), 16, [
      ...set(bits, i32x4Bitmask(mask)),
      ...perVector,
      ...when(get(bits), [
        ...whileDo(get(bits), [
          // the lowest set bit's float: at + 4 lane
          ...set(off, add(get(at), shl(ictz(get(bits)), i32(2)))),
          ...set(slot, shl(get(n), i32(2))),
          ...istore(add(get(ids), get(slot)), ishrU(get(off), i32(2))),
          ...fstore(add(get(ls), get(slot)), fload(add(get(L), get(off)))),
          ...when(get(W), fstore(add(get(ws), get(slot)), fload(add(get(W), get(off))))),
          ...set(n, add(get(n), i32(1))),
          ...set(bits, iand(get(bits), sub(get(bits), i32(1)))),
        ]),
        ...when(igtS(get(n), get(cap)), [...get(n), 0x0f]),
      ]),
      ...(blockEnd ? when(ieq(iand(get(at), i32(BLOCK * 4 - 1)), i32(BLOCK * 4 - 16)), blockEnd) : []),
    ]),
    ...get(n),
  ];
  return f;
}

/** collectAtLeast(L, W, nv, ids, ls, ws, cap, a): the ids with l >= a. */
const collectAtLeast = (): Fn =>
  collector('collectAtLeast', [Ty.f32], (f, at) => {
    const [L, a] = [0, 7];
    const va = f.local(Ty.v128);
    return { setup: set(va, splat(get(a))), mask: vge(vload(add(get(L), get(at))), get(va)) };
  });

/** collectCut(L, W, nv, ids, ls, ws, cap, a, jt): the ids with l > a, or l = a and id <= jt. */
const collectCut = (): Fn =>
  collector('collectCut', [Ty.f32, Ty.i32], (f, at) => {
    const [L, a, jt] = [0, 7, 8];
    const va = f.local(Ty.v128);
    const vjt = f.local(Ty.v128);
    const idx = f.local(Ty.v128);
    const v = f.local(Ty.v128);
    return {
      setup: [...set(va, splat(get(a))), ...set(vjt, i32x4SplatOf(get(jt))), ...set(idx, IOTA())],
      mask: [...set(v, vload(add(get(L), get(at)))), ...inCut(get(v), va, idx, vjt)],
      perVector: set(idx, i32x4Add(get(idx), i32x4SplatOf(i32(4)))),
    };
  });

/** collectBucket(L, W, nv, ids, ls, ws, cap, max, s, c, bucket): the ids in the given bucket of Bucketer. */
const collectBucket = (): Fn =>
  collector('collectBucket', [Ty.f32, Ty.f32, Ty.f32, Ty.i32], (f, at) => {
    const [L, max, s, c, bucket] = [0, 7, 8, 9, 10];
    const vb = f.local(Ty.v128);
    const bk = new Bucketer(f);
    return {
      setup: [...bk.setup(max, s, c), ...set(vb, bucketBits(bucket))],
      mask: i32x4Eq(bk.bits(vload(add(get(L), get(at)))), get(vb)),
    };
  });

/**
 * nucleusPass(L, W, nv, ids, ls, ws, cap, max, s, c, bucket, S): collectBucket's ids, and S[b] = the float64 sum
 * of block b's W over the lanes in buckets before `bucket` (the caller adds the bucket's own kept ids).
 */
const nucleusPass = (): Fn =>
  collector('nucleusPass', [Ty.f32, Ty.f32, Ty.f32, Ty.i32, Ty.i32], (f, at) => {
    const [L, W, max, s, c, bucket, S] = [0, 1, 7, 8, 9, 10, 11];
    const vb = f.local(Ty.v128);
    const bi = f.local(Ty.v128);
    const w = f.local(Ty.v128);
    const blo = f.local(Ty.v128);
    const bhi = f.local(Ty.v128);
    const zero = f.local(Ty.v128);
    const bk = new Bucketer(f);
    return {
      setup: [
        ...bk.setup(max, s, c),
        ...set(vb, bucketBits(bucket)),
        ...set(zero, vconst(0)),
        ...set(blo, get(zero)),
        ...set(bhi, get(zero)),
      ],
      mask: [...set(bi, bk.bits(vload(add(get(L), get(at))))), ...i32x4Eq(get(bi), get(vb))],
      // The lanes strictly before the crossing bucket: bucket > bi.
      perVector: [
        ...set(w, vand(vload(add(get(W), get(at))), i32x4GtS(get(vb), get(bi)))),
        ...expSumStep(blo, bhi, w),
      ],
      blockEnd: [
        ...dstore(add(get(S), shl(ishrU(get(at), i32(8)), i32(3))), expSumTotal(blo, bhi)),
        ...set(blo, get(zero)),
        ...set(bhi, get(zero)),
      ],
    };
  });

/** minFinite(L, nv) -> the smallest float other than -Infinity (NaN never wins; +Infinity when there is none). */
function minFinite(): Fn {
  const f = new Fn('minFinite', [Ty.i32, Ty.i32], [Ty.f32]);
  const [L, nv] = [0, 1];
  const at = f.local(Ty.i32);
  const acc = f.local(Ty.v128);
  const v = f.local(Ty.v128);
  f.body = [
    ...set(acc, vconst(Infinity)),
    ...loop(at, get(L), add(get(L), shl(get(nv), i32(4))), 16, [
      ...set(v, vload(get(at))),
      ...set(acc, vpmin(get(acc), vselect(vconst(Infinity), get(v), veq(get(v), vconst(-Infinity))))),
    ]),
    ...f32(Infinity),
    ...[0, 1, 2, 3].flatMap((k) => [...lane(get(acc), k), 0x96]), // f32.min of the running value and each lane
  ];
  return f;
}

/** Every sampling kernel, plus rowExpSum for log-sum-exp (so that it is computed exactly as rows.ts does). */
export const buildSampleKernels = (): Fn[] => [
  blockMax(),
  ...[false, true].flatMap((cut) => [false, true].map((mirror) => weights({ cut, mirror }))),
  weights({ cut: false, mirror: true, ownExp: true }),
  weights({ cut: true, mirror: true, ownExp: true }),
  histogram(),
  histogramMass(),
  collectCut(),
  collectAtLeast(),
  collectBucket(),
  nucleusPass(),
  minFinite(),
  rowExpSum(),
];
