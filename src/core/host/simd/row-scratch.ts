/**
 * The sampler's private WebAssembly memory: a copy of the row being sampled, padded with -Infinity to whole
 * blocks, and the arrays its SIMD passes write (weights, block sums and maxima, histograms, id lists). Every row
 * is copied, wherever it lives, so a row samples the same in the wasm heap and in JavaScript memory.
 */
import { kernelsIn, type Kernels } from './instance.ts';
import { BLOCK, BUCKETS, buildSampleKernels } from './sample-kernels.ts';

/** Ids listed by a collecting pass, in id order, with their logits and (when asked) weights. */
export interface Listed {
  readonly ids: Int32Array;
  readonly ls: Float32Array;
  readonly ws: Float32Array | null;
}

export class RowScratch {
  /** The row's length and its padded length (whole blocks). */
  V = 0;
  Vp = 0;
  /** Vectors and blocks of the padded row. */
  nv = 0;
  nb = 0;
  /** The padded row. */
  L = new Float32Array(0);
  /** Tempered weights, from the weights pass. */
  W = new Float32Array(0);
  /** Ids, from the collecting passes, with their logits and weights. */
  ids = new Int32Array(0);
  ls = new Float32Array(0);
  ws = new Float32Array(0);
  /** Per block: the weights' sum (weights pass), the kept weights' sum (keptSums), the maximum (blockMax). */
  S = new Float64Array(0);
  S2 = new Float64Array(0);
  BM = new Float32Array(0);
  /** Four histograms of BUCKETS float64 each. */
  H = new Float64Array(0);
  /** Byte offsets of the arrays above in `memory`. */
  readonly at = { L: 0, W: 0, ids: 0, ls: 0, ws: 0, S: 0, S2: 0, BM: 0, H: 0 };

  private constructor(
    private readonly memory: WebAssembly.Memory,
    readonly k: Kernels,
  ) {}

  private static shared: RowScratch | null | undefined;

  /**
   * Runs a collecting kernel (its arguments after the common ones) and returns what it listed: ids in id order,
   * their logits and, when `weights`, their weights; null past `cap`.
   */
  collect(kernel: string, cap: number, weights: boolean, ...args: number[]): Listed | null {
    const at = this.at;
    const n: number = this.k[kernel](at.L, weights ? at.W : 0, this.nv, at.ids, at.ls, at.ws, cap, ...args);
    if (n > cap) return null;
    return { ids: this.ids.slice(0, n), ls: this.ls.slice(0, n), ws: weights ? this.ws.slice(0, n) : null };
  }

  /** The scratch holding a copy of `row`; null where WebAssembly SIMD is unavailable. */
  static load(row: Float32Array): RowScratch | null {
    if (RowScratch.shared === undefined) {
      const memory = new WebAssembly.Memory({ initial: 1 });
      const k = kernelsIn(memory, 'sample', buildSampleKernels);
      RowScratch.shared = k ? new RowScratch(memory, k) : null;
    }
    const s = RowScratch.shared;
    if (!s) return null;
    s.resize(row.length);
    s.L.set(row);
    s.L.fill(-Infinity, row.length);
    return s;
  }

  /** Lays the arrays out for rows of V floats, growing the memory when they do not fit. */
  private resize(V: number): void {
    if (V === this.V && this.L.buffer === this.memory.buffer) return;
    const Vp = Math.max(BLOCK, Math.ceil(V / BLOCK) * BLOCK);
    const nb = Vp / BLOCK;
    let end = 0;
    const take = (bytes: number): number => {
      const start = end;
      end += Math.ceil(bytes / 16) * 16;
      return start;
    };
    const at = this.at;
    at.H = take(4 * BUCKETS * 8);
    at.S = take(nb * 8);
    at.S2 = take(nb * 8);
    at.BM = take(nb * 4);
    at.L = take(Vp * 4);
    at.W = take(Vp * 4);
    at.ids = take(Vp * 4);
    at.ls = take(Vp * 4);
    at.ws = take(Vp * 4);
    const pages = Math.ceil(end / 65536) - this.memory.buffer.byteLength / 65536;
    if (pages > 0) this.memory.grow(pages);
    const buf = this.memory.buffer;
    Object.assign(this, { V, Vp, nv: Vp / 4, nb });
    this.L = new Float32Array(buf, at.L, Vp);
    this.W = new Float32Array(buf, at.W, Vp);
    this.ids = new Int32Array(buf, at.ids, Vp);
    this.ls = new Float32Array(buf, at.ls, Vp);
    this.ws = new Float32Array(buf, at.ws, Vp);
    this.S = new Float64Array(buf, at.S, nb);
    this.S2 = new Float64Array(buf, at.S2, nb);
    this.BM = new Float32Array(buf, at.BM, nb);
    this.H = new Float64Array(buf, at.H, 4 * BUCKETS);
  }
}
