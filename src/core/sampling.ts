/**
 * Next-token choice from one row of logits: greedy, temperature, top-k, top-p, with the caller's
 * seeded Rng (one per sequence, so batching never changes what a sequence draws). Each call draws
 * exactly one uniform. Nothing sorts the whole vocabulary: top-k keeps a size-k heap, top-p
 * without top-k sorts only the buckets of log-weight that the nucleus reaches.
 */
import type { Rng } from '../util/rng.ts';
import { XlstmError } from '../util/errors.ts';
import { argMaxSimd } from './host/simd/rows.ts';

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
 * last one kept stay in); the draw walks the kept set in id order. `logprob` is the token's
 * log-probability under the model (softmax of the raw logits), whatever the settings; pass
 * `logZ` (the row's logsumexp, e.g. computed batched on the device) to skip a pass of V exps.
 */
export function sampleToken(
  logits: Float32Array,
  p: SamplingParams,
  rng: Pick<Rng, 'uniform'>,
  logZ: number = logSumExp(logits),
): { id: number; logprob: number } {
  const V = logits.length;
  const best = argMax(logits);
  const max = logits[best];
  const u = rng.uniform();
  if (p.temperature === 0) return { id: best, logprob: max - logZ };

  const invT = 1 / p.temperature;
  let ids = p.topK > 0 && p.topK < V ? topKIds(logits, p.topK) : null;
  if (p.topP < 1) ids = ids ? nucleusOf(logits, ids, max, invT, p.topP) : nucleusAll(logits, max, invT, p.topP);
  const id = ids ? drawFrom(logits, ids, max, invT, u) : drawAll(logits, max, invT, u);
  return { id, logprob: logits[id] - logZ };
}

/** The first index of the largest logit (NaN never wins unless it stands at 0), four lanes at a time where SIMD runs. */
function argMax(logits: Float32Array): number {
  const simd = argMaxSimd(logits);
  if (simd !== null) return simd;
  let best = 0;
  for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
  return best;
}

/** log(sum(exp(logits))), stabilised by the maximum. */
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

/** The nucleus within given candidate ids: sort them by weight, keep the prefix reaching topP. */
function nucleusOf(logits: Float32Array, ids: Int32Array, max: number, invT: number, topP: number): Int32Array {
  const order = Array.from(ids).sort((a, b) => logits[b] - logits[a] || a - b);
  let total = 0;
  for (const j of order) total += Math.exp((logits[j] - max) * invT);
  let mass = 0;
  let cut = order.length;
  for (let n = 0; n < order.length; n++) {
    mass += Math.exp((logits[order[n]] - max) * invT);
    if (mass >= topP * total) {
      cut = n + 1;
      while (cut < order.length && logits[order[cut]] === logits[order[n]]) cut++;
      break;
    }
  }
  return Int32Array.from(order.slice(0, cut)).sort();
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

/** Inverse CDF over the kept ids in id order. */
function drawFrom(logits: Float32Array, ids: Int32Array, max: number, invT: number, u: number): number {
  let total = 0;
  for (const j of ids) total += Math.exp((logits[j] - max) * invT);
  let left = u * total;
  for (const j of ids) {
    left -= Math.exp((logits[j] - max) * invT);
    if (left < 0) return j;
  }
  return ids[ids.length - 1];
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
