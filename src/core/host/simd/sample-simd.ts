/**
 * sampleToken's rules (sampling.ts) on the SIMD passes of sample-kernels.ts, over a copy of the row: a few
 * passes over the vocabulary, never a sort of it. One pass keeps block maxima (the row's maximum, the argmax,
 * and a lower bound for the k-th largest logit, so small top-k lists only the ids above it); one writes the
 * tempered weights and their block sums, and log-sum-exp's own sum beside them; top-p lists the ids above a
 * block-maxima bound when those can hold the nucleus, else reads a histogram of tempered log-weight; the draw
 * picks a block by its prefix sum and walks only that block's stored weights.
 */
import type { SamplingParams } from '../../sampling.ts';
import { drawFrom, largestReaching, nucleusOf, type IdList } from './kept-lists.ts';
import { RowScratch, type Listed } from './row-scratch.ts';
import { finishLogSumExp } from './rows.ts';
import { BLOCK, BUCKETS, weightsName } from './sample-kernels.ts';

/** Top-k up to this size finishes on its listed ids in float64 JavaScript: cheaper than a pass of V exps. */
const SMALL_K = 256;
/** At most this many ids above the block-maxima bound are listed; beyond, a histogram of logits narrows them. */
const CANDIDATES = 4096;
/**
 * A nucleus is first looked for among the ids reaching the SHORT_NUCLEUS-th largest block maximum, when the
 * blocks holding them weigh enough: on peaked rows that list holds it, and no histogram is needed.
 */
const SHORT_NUCLEUS = 256;
/** Top-p histogram buckets per nat of tempered log-weight: BUCKETS / PER_NAT = 64 nats, past any nucleus's end. */
const PER_NAT = 8;
/** The largest 1/temperature in float32 passes: (l - max) invT stays finite or -Infinity, never NaN. */
const MAX_INV_T_F32 = 1e30;
const MAX_INV_T = 1e300;

/** A top-k set as a cut: the ids with logit > a, and those with logit = a up to id jt. */
interface Cut {
  readonly a: number;
  readonly jt: number;
}

type Plan =
  | { readonly kind: 'argmax'; readonly id: number }
  /** A short kept list, finished in float64 JavaScript. */
  | { readonly kind: 'list'; readonly list: IdList; readonly invT: number }
  /** A short kept list with its stored weights (ws[i] weighs ids[i]), after the weights pass. */
  | { readonly kind: 'weighted'; readonly ids: Int32Array; readonly ws: Float32Array; readonly mirrorSum: number | null }
  /**
   * The weights pass has run: the kept set is the cut (or every id) and, for top-p, logit >= floor (else
   * -Infinity). `mirrorSum` is rowExpSum's sum when the pass computed it.
   */
  | { readonly kind: 'blocks'; readonly cut: Cut | null; readonly floor: number; readonly mirrorSum: number | null };

/** sampleToken by the SIMD passes, with its uniform u; null where WebAssembly SIMD is unavailable. */
export function sampleTokenSimd(logits: Float32Array, p: SamplingParams, u: number, logZ?: number): { id: number; logprob: number } | null {
  const s = RowScratch.load(logits);
  if (!s) return null;
  const max: number = s.k.blockMax(s.at.L, s.nb, s.at.BM);
  const plan = planFor(s, max, p, logZ === undefined);
  let id: number;
  if (plan.kind === 'argmax') id = plan.id;
  else if (plan.kind === 'list') id = drawFrom(plan.list, max, plan.invT, u);
  else if (plan.kind === 'weighted') id = drawWeighted(plan.ids, plan.ws, u);
  else id = draw(s, plan.floor > -Infinity ? s.S2 : s.S, plan.floor, u) ?? argMax(s, max);
  if (logZ === undefined) {
    const mirrorSum = plan.kind === 'blocks' || plan.kind === 'weighted' ? plan.mirrorSum : null;
    logZ = mirrorSum !== null ? finishLogSumExp(logits, max, mirrorSum) : logSumExp(s, logits, max);
  }
  return { id, logprob: logits[id] - logZ };
}

/** The ids sampleTokenSimd may draw from (its kept set), in id order; null where WebAssembly SIMD is unavailable. */
export function keptIdsSimd(logits: Float32Array, p: SamplingParams): Int32Array | null {
  const s = RowScratch.load(logits);
  if (!s) return null;
  const plan = planFor(s, s.k.blockMax(s.at.L, s.nb, s.at.BM), p, false);
  if (plan.kind === 'argmax') return Int32Array.of(plan.id);
  if (plan.kind === 'list') return plan.list.ids;
  if (plan.kind === 'weighted') return plan.ids;
  const { cut, floor } = plan;
  if (cut && !(floor > cut.a)) return collect(s, cut).ids;
  if (floor > -Infinity) return collect(s, { a: floor, jt: s.Vp }).ids;
  return Int32Array.from({ length: logits.length }, (_, j) => j);
}

/** Decides the kept set, running the passes it needs; `mirror`: have the weights pass compute log-sum-exp's sum. */
function planFor(s: RowScratch, max: number, p: SamplingParams, mirror: boolean): Plan {
  // A row without a finite maximum has no distribution to draw from: its argmax stands in.
  if (p.temperature === 0 || !(max > -Infinity)) return { kind: 'argmax', id: argMax(s, max) };
  const k = p.topK > 0 && p.topK < s.V ? p.topK : 0;
  const top = k > 0 ? topKCut(s, max, k) : null;
  const cut = top?.cut ?? null;
  if (top && k <= SMALL_K) {
    const invT = Math.min(1 / p.temperature, MAX_INV_T);
    const list = top.listed ? inCut(top.listed, top.cut) : collect(s, top.cut);
    return { kind: 'list', list: p.topP < 1 ? nucleusOf(list, max, invT, p.topP) : list, invT };
  }
  const mirrorSum = weights(s, max, p.temperature, cut, mirror ? s.V >> 2 : -1);
  if (p.topP >= 1) return { kind: 'blocks', cut, floor: -Infinity, mirrorSum };
  let total = 0;
  for (let b = 0; b < s.nb; b++) total += s.S[b];
  const target = p.topP * total;
  const short = shortNucleus(s, target);
  if (short) return { kind: 'weighted', ...short, mirrorSum };
  return { kind: 'blocks', cut, floor: nucleusFloor(s, max, p.temperature, target), mirrorSum };
}

/** The first index of the maximum (0 when the row starts with NaN, as the scalar loop finds it). */
function argMax(s: RowScratch, max: number): number {
  if (Number.isNaN(s.L[0])) return 0;
  for (let b = 0; b < s.nb; b++) {
    if (s.BM[b] !== max) continue;
    for (let j = b * BLOCK; j < (b + 1) * BLOCK; j++) if (s.L[j] === max) return j;
  }
  return 0;
}

/** log-sum-exp of the row exactly as rows.ts logSumExpSimd computes it (same kernel, same float64 tail). */
function logSumExp(s: RowScratch, logits: Float32Array, max: number): number {
  if (max === -Infinity) return -Infinity;
  return finishLogSumExp(logits, max, s.k.rowExpSum(s.at.L, logits.length >> 2, max));
}

const invTF32 = (temperature: number): number => Math.min(1 / temperature, MAX_INV_T_F32);

/** The weights pass; returns rowExpSum's sum over the first nMirror vectors when nMirror >= 0. */
function weights(s: RowScratch, max: number, temperature: number, cut: Cut | null, nMirror: number): number | null {
  const { at } = s;
  const mirror = nMirror >= 0;
  const args = [at.L, s.nv, max, invTF32(temperature), at.W, at.S];
  if (cut) args.push(cut.a, cut.jt);
  if (mirror) args.push(nMirror);
  const sum: number = s.k[weightsName({ cut: cut !== null, mirror, ownExp: temperature !== 1 })](...args);
  return mirror ? sum : null;
}

/** The ids of a cut, in id order, with their logits (the padding never belongs: cuts end below V). */
function collect(s: RowScratch, cut: Cut): IdList {
  const all = cut.jt >= s.Vp;
  const got = s.collect(all ? 'collectAtLeast' : 'collectCut', s.Vp, false, ...(all ? [cut.a] : [cut.a, cut.jt])) as Listed;
  const n = got.ids.findIndex((j) => j >= s.V);
  return n < 0 ? got : { ids: got.ids.subarray(0, n), ls: got.ls.subarray(0, n) };
}

/** The entries of a cut among a list that holds every id of it. */
function inCut(list: Listed, cut: Cut): IdList {
  const { ids, ls } = list;
  const keptIds = new Int32Array(ids.length);
  const keptLs = new Float32Array(ids.length);
  let n = 0;
  for (let i = 0; i < ids.length; i++) {
    if (!(ls[i] > cut.a || (ls[i] === cut.a && ids[i] <= cut.jt))) continue;
    keptIds[n] = ids[i];
    keptLs[n++] = ls[i];
  }
  return { ids: keptIds.subarray(0, n), ls: keptLs.subarray(0, n) };
}

/**
 * The k largest logits as a cut (lower id first among equals), and when they were listed, the ids with logit
 * >= the cut's (a superset of the cut, in id order). The k-th largest block maximum bounds the k-th largest
 * logit from below (k blocks hold a logit at least that large), so usually only a few ids reach it; otherwise a
 * histogram of logits between the bound and the maximum finds the bucket holding the k-th.
 */
function topKCut(s: RowScratch, max: number, k: number): { cut: Cut; listed: Listed | null } {
  const bound = k <= s.nb ? kthLargest(s.BM, k) : -Infinity;
  let members = bound > -Infinity ? s.collect('collectAtLeast', CANDIDATES, false, bound) : null;
  let before = 0;
  if (!members) {
    const lo = bound > -Infinity ? bound : s.k.minFinite(s.at.L, s.nv);
    const range = max - lo;
    const scale = range > 0 && range < Infinity ? (BUCKETS - 2.5) / range : 1;
    s.H.fill(0);
    // With a finite bound every id that can be kept lies in buckets up to BUCKETS - 2; without, count them all.
    s.k.histogram(s.at.L, s.nv, max, scale, -1, bound > -Infinity ? BUCKETS - 2 : BUCKETS - 1, s.at.H);
    const found = crossing(s.H, k);
    before = found ? found.before : 0;
    members = s.collect('collectBucket', s.Vp, false, max, scale, -1, found ? found.bucket : BUCKETS - 1) as Listed;
  }
  const { ids, ls } = members;
  const a = largestReaching(ls, null, k - before);
  let greater = before;
  for (let i = 0; i < ls.length; i++) if (ls[i] > a) greater++;
  // With nothing before the listed bucket, the list holds every id with logit >= a.
  const listed = before === 0 ? members : null;
  let ties = k - greater;
  for (let i = 0; i < ls.length; i++) if (ls[i] === a && --ties === 0) return { cut: { a, jt: ids[i] }, listed };
  return { cut: { a, jt: s.Vp }, listed };
}

/** The k-th largest of `values` (quickselect on a copy). */
function kthLargest(values: Float32Array, k: number): number {
  const v = values.slice();
  const target = k - 1;
  let lo = 0;
  let hi = v.length - 1;
  while (lo < hi) {
    const pivot = v[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i] > pivot) i++;
      while (v[j] < pivot) j--;
      if (i <= j) {
        const t = v[i];
        v[i++] = v[j];
        v[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return v[target];
}

/**
 * The nucleus (stored weights reaching `target`) as a list, when the ids reaching the SHORT_NUCLEUS-th largest
 * block maximum hold it; else null. Those ids lie in the blocks with such maxima, so the blocks' sums bound
 * their weight before anything is listed.
 */
function shortNucleus(s: RowScratch, target: number): { ids: Int32Array; ws: Float32Array } | null {
  const bound = kthLargest(s.BM, Math.min(SHORT_NUCLEUS, s.nb));
  let most = 0;
  for (let b = 0; b < s.nb; b++) if (s.BM[b] >= bound) most += s.S[b];
  if (!(most >= target)) return null;
  const listed = s.collect('collectAtLeast', CANDIDATES, true, bound);
  if (!listed) return null;
  const { ids, ls } = listed;
  const ws = listed.ws as Float32Array;
  let mass = 0;
  for (let i = 0; i < ws.length; i++) if (ls[i] > -Infinity) mass += ws[i];
  if (!(mass >= target)) return null;
  const floor = largestReaching(ls, ws, target);
  const keep = (i: number): boolean => ws[i] > 0 && ls[i] >= floor && ls[i] > -Infinity;
  return { ids: ids.filter((_, i) => keep(i)), ws: ws.filter((_, i) => keep(i)) };
}

/** Inverse CDF over listed ids (in id order) by their weights ws; the last weighted id where rounding runs past the end. */
function drawWeighted(ids: Int32Array, ws: Float32Array, u: number): number {
  let total = 0;
  for (let i = 0; i < ws.length; i++) total += ws[i];
  let left = u * total;
  let last = ids[0];
  for (let i = 0; i < ws.length; i++) {
    if (!(ws[i] > 0)) continue;
    last = ids[i];
    left -= ws[i];
    if (left < 0) return ids[i];
  }
  return last;
}

/**
 * Top-p over the stored weights and their histogram: the smallest logit l* such that the ids with logit >= l*
 * weigh at least `target` (topP of the total), or -Infinity to keep every id. The crossing bucket's ids decide
 * l*; S2 gets each block's kept weight (the buckets before the crossing one, then its ids from l* up).
 */
function nucleusFloor(s: RowScratch, max: number, temperature: number, target: number): number {
  const invT = invTF32(temperature);
  s.H.fill(0);
  s.k.histogramMass(s.at.L, s.at.W, s.nv, max, invT, -PER_NAT, s.at.H);
  const found = crossing(s.H, target);
  if (!found) return -Infinity;
  const { ids, ls, ws } = s.collect('nucleusPass', s.Vp, true, max, invT, -PER_NAT, found.bucket, s.at.S2) as Listed;
  const w = ws as Float32Array;
  const floor = largestReaching(ls, w, target - found.before);
  for (let i = 0; i < ids.length; i++) if (ls[i] >= floor && ls[i] > -Infinity) s.S2[(ids[i] / BLOCK) | 0] += w[i];
  return floor;
}

/** The first bucket of the four histograms in H where the running total reaches `needed`, and the total before it. */
function crossing(H: Float64Array, needed: number): { bucket: number; before: number } | null {
  let before = 0;
  for (let b = 0; b < BUCKETS; b++) {
    const mass = H[b] + H[BUCKETS + b] + H[2 * BUCKETS + b] + H[3 * BUCKETS + b];
    if (before + mass >= needed) return { bucket: b, before };
    before += mass;
  }
  return null;
}

/**
 * Inverse CDF in id order over the stored weights of ids with logit >= floor: the block by its prefix sum,
 * then that block's weights one by one (the block sums add the same float32 weights, so walk and total
 * agree up to float64 rounding; where rounding leaves u past the end, the last weighted id is taken).
 */
function draw(s: RowScratch, sums: Float64Array, floor: number, u: number): number | null {
  let total = 0;
  for (let b = 0; b < s.nb; b++) total += sums[b];
  let left = u * total;
  let block = -1;
  let inside = false;
  for (let b = 0; b < s.nb && !inside; b++) {
    const sb = sums[b];
    if (!(sb > 0)) continue;
    block = b;
    if (left < sb) inside = true;
    else left -= sb;
  }
  if (block < 0) return null;
  if (!inside) left = Infinity;
  const { W, L } = s;
  let last: number | null = null;
  for (let j = block * BLOCK; j < (block + 1) * BLOCK; j++) {
    const w = W[j];
    // -Infinity weighs float32 exp's floor in W, not 0: it must never be drawn.
    if (!(w > 0 && L[j] >= floor && L[j] > -Infinity)) continue;
    last = j;
    left -= w;
    if (left < 0) return j;
  }
  return last;
}
