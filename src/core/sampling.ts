/**
 * Next-token choice from one row of logits: greedy, temperature, top-k, top-p, with the caller's
 * seeded Rng (one per sequence, so batching never changes what a sequence draws). Each call draws
 * exactly one uniform. Nothing sorts the whole vocabulary. Where WebAssembly SIMD runs, a few SIMD
 * passes over a copy of the row decide and draw (host/simd/sample-simd.ts, float32 weights); elsewhere
 * the same rules run in float64 JavaScript here: top-k keeps a size-k heap, top-p without top-k sorts
 * only the buckets of log-weight that the nucleus reaches.
 */
import type { Rng } from '../util/rng.ts';
import { XlstmError } from '../util/errors.ts';
import { logSumExpRowJs } from './host/math.ts';
import { drawFrom, listOf, nucleusOf } from './host/simd/kept-lists.ts';
import { keptIdsSimd, sampleTokenSimd } from './host/simd/sample-simd.ts';

export interface SamplingParams {
  /** 0 means greedy (argmax). */
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 means no limit. */
  readonly topK: number;
  /** Keep the smallest most-likely set whose mass reaches topP; 1 means no limit. */
  readonly topP: number;
}

export const GREEDY: SamplingParams = Object.freeze({ temperature: 0, topK: 0, topP: 1 });

export function validateSampling(p: SamplingParams): void {
  const bad = (field: string, expected: string, got: number): never => {
    throw new XlstmError('INVALID_INPUT', `${field} expected ${expected}, but got ${got}.`);
  };
  if (!(p.temperature >= 0) || !Number.isFinite(p.temperature)) bad('temperature', 'a finite number >= 0', p.temperature);
  if (!Number.isInteger(p.topK) || p.topK < 0) bad('topK', 'an integer >= 0', p.topK);
  if (!(p.topP > 0 && p.topP <= 1)) bad('topP', 'a number in (0, 1]', p.topP);
}

/**
 * Picks a token from logits [V]. The kept set is the top-k tokens (ties broken by lower id), then
 * the smallest prefix of them by descending weight whose mass reaches topP (tokens tied with the
 * last one kept stay in); the draw walks the kept set in id order. -Infinity logits are never drawn.
 * `logprob` is the token's log-probability under the model (softmax of the raw logits), whatever the
 * settings, with `logZ` the row's logsumexp: pass it when known (e.g. computed batched on the device);
 * otherwise it is computed as host/math.ts logSumExpRow computes it, in the same passes as the draw.
 */
export function sampleToken(
  logits: Float32Array,
  p: SamplingParams,
  rng: Pick<Rng, 'uniform'>,
  logZ?: number,
): { id: number; logprob: number } {
  const u = rng.uniform();
  return sampleTokenSimd(logits, p, u, logZ) ?? sampleTokenScalar(logits, p, u, logZ);
}

/** The ids sampleToken may draw from under p (its kept set), in id order: the argmax alone when greedy. */
export function keptIds(logits: Float32Array, p: SamplingParams): Int32Array {
  return keptIdsSimd(logits, p) ?? keptIdsScalar(logits, p);
}

/**
 * sampleToken in float64 JavaScript with its uniform u, for runtimes without WebAssembly SIMD (exported so
 * that tests check it on runtimes with SIMD too).
 */
export function sampleTokenScalar(logits: Float32Array, p: SamplingParams, u: number, logZ?: number): { id: number; logprob: number } {
  const best = argMax(logits);
  const max = logits[best];
  const Z = logZ ?? logSumExpRowJs(logits);
  if (p.temperature === 0 || !(max > -Infinity)) return { id: best, logprob: max - Z };
  const invT = Math.min(1 / p.temperature, MAX_INV_T);
  const ids = keptList(logits, p, max, invT);
  const id = ids ? drawFrom(listOf(logits, ids), max, invT, u) : drawAll(logits, max, invT, u);
  return { id, logprob: logits[id] - Z };
}

/** keptIds in float64 JavaScript (see sampleTokenScalar). */
export function keptIdsScalar(logits: Float32Array, p: SamplingParams): Int32Array {
  const best = argMax(logits);
  const max = logits[best];
  if (p.temperature === 0 || !(max > -Infinity)) return Int32Array.of(best);
  return keptList(logits, p, max, Math.min(1 / p.temperature, MAX_INV_T)) ?? Int32Array.from({ length: logits.length }, (_, j) => j);
}

/** The largest 1/temperature: (l - max) invT stays finite or -Infinity, never NaN. */
const MAX_INV_T = 1e300;

/** The kept ids when top-k or top-p limits them, else null (every id). */
function keptList(logits: Float32Array, p: SamplingParams, max: number, invT: number): Int32Array | null {
  const V = logits.length;
  let ids = p.topK > 0 && p.topK < V ? topKIds(logits, p.topK) : null;
  if (p.topP < 1) ids = ids ? nucleusOf(listOf(logits, ids), max, invT, p.topP).ids : nucleusAll(logits, max, invT, p.topP);
  return ids;
}

/** The first index of the largest logit (NaN never wins unless it stands at 0). */
function argMax(logits: Float32Array): number {
  let best = 0;
  for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
  return best;
}

/** log(sum(exp(logits))), stabilised by the maximum, in float64 with Math.exp: a reference for the faster forms. */
export function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let j = 0; j < logits.length; j++) if (logits[j] > max) max = logits[j];
  let z = 0;
  for (let j = 0; j < logits.length; j++) z += Math.exp(logits[j] - max);
  return max + Math.log(z);
}

/** The k largest logits' ids (lower id first among equals), in id order. Min-heap of size k. */
function topKIds(logits: Float32Array, k: number): Int32Array {
  const heap = new Int32Array(k);
  // a is "below" b in the heap order: smaller logit, or equal logit and larger id.
  const below = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < k && below(heap[l], heap[m])) m = l;
      if (r < k && below(heap[r], heap[m])) m = r;
      if (m === i) return;
      const t = heap[i];
      heap[i] = heap[m];
      heap[m] = t;
      i = m;
    }
  };
  for (let j = 0; j < k; j++) heap[j] = j;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
  // Ids only grow, so a newcomer equal to the heap's minimum never displaces it (lower id wins).
  let threshold = logits[heap[0]];
  for (let j = k; j < logits.length; j++) {
    if (logits[j] > threshold) {
      heap[0] = j;
      siftDown(0);
      threshold = logits[heap[0]];
    }
  }
  return heap.sort();
}


/** Buckets of 1/4 nat of tempered log-weight below the maximum; the last catches the tail. */
const BUCKETS = 256;

/** The nucleus over the whole vocabulary: bucket by log-weight, sort only the buckets it reaches. */
function nucleusAll(logits: Float32Array, max: number, invT: number, topP: number): Int32Array {
  const V = logits.length;
  const mass = new Float64Array(BUCKETS);
  const bucketOf = new Uint8Array(V);
  let total = 0;
  for (let j = 0; j < V; j++) {
    const lw = (logits[j] - max) * invT; // <= 0
    const b = Math.min(BUCKETS - 1, Math.floor(-lw * 4));
    bucketOf[j] = b;
    const w = Math.exp(lw);
    mass[b] += w;
    total += w;
  }
  let reach = 0;
  let acc = 0;
  for (; reach < BUCKETS - 1; reach++) {
    acc += mass[reach];
    if (acc >= topP * total) break;
  }
  const candidates: number[] = [];
  for (let j = 0; j < V; j++) if (bucketOf[j] <= reach) candidates.push(j);
  // Sorting the reached buckets' members gives the same prefix as sorting everything: every token
  // outside them weighs less than every token inside.
  const order = candidates.sort((a, b) => logits[b] - logits[a] || a - b);
  let m = 0;
  let cut = order.length;
  for (let n = 0; n < order.length; n++) {
    m += Math.exp((logits[order[n]] - max) * invT);
    if (m >= topP * total) {
      cut = n + 1;
      while (cut < order.length && logits[order[cut]] === logits[order[n]]) cut++;
      break;
    }
  }
  return Int32Array.from(order.slice(0, cut)).sort();
}

/** Inverse CDF over the whole vocabulary in id order. */
function drawAll(logits: Float32Array, max: number, invT: number, u: number): number {
  const V = logits.length;
  let total = 0;
  for (let j = 0; j < V; j++) total += Math.exp((logits[j] - max) * invT);
  let left = u * total;
  let last = 0;
  for (let j = 0; j < V; j++) {
    const w = Math.exp((logits[j] - max) * invT);
    if (w === 0) continue;
    left -= w;
    last = j;
    if (left < 0) return j;
  }
  return last;
}
