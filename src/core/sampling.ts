/**
 * Next-token choice from one row of logits: greedy, temperature, top-k, top-p, with the caller's
 * seeded Rng (one per sequence, so batching never changes what a sequence draws).
 */
import type { Rng } from '../util/rng.ts';
import { XlstmError } from '../util/errors.ts';

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
 * Picks a token from logits [V]. `logprob` is the token's log-probability under the model
 * (softmax of the raw logits), whatever the sampling settings.
 */
export function sampleToken(logits: Float32Array, p: SamplingParams, rng: Rng): { id: number; logprob: number } {
  const V = logits.length;
  let maxIdx = 0;
  for (let j = 1; j < V; j++) if (logits[j] > logits[maxIdx]) maxIdx = j;
  const max = logits[maxIdx];
  let z = 0;
  for (let j = 0; j < V; j++) z += Math.exp(logits[j] - max);
  const logZ = max + Math.log(z);
  if (p.temperature === 0) {
    // The draw is still consumed so that switching temperature never shifts later draws.
    rng.uniform();
    return { id: maxIdx, logprob: max - logZ };
  }
  const weights = new Float64Array(V);
  for (let j = 0; j < V; j++) weights[j] = Math.exp((logits[j] - max) / p.temperature);
  if (p.topK > 0 && p.topK < V) keepTopK(weights, p.topK);
  if (p.topP < 1) keepTopP(weights, p.topP);
  let total = 0;
  for (let j = 0; j < V; j++) total += weights[j];
  let u = rng.uniform() * total;
  let id = maxIdx;
  for (let j = 0; j < V; j++) {
    if (weights[j] === 0) continue;
    u -= weights[j];
    id = j;
    if (u < 0) break;
  }
  return { id, logprob: logits[id] - logZ };
}

/** Zeroes all but the k largest weights (ties at the threshold kept by index order). */
function keepTopK(w: Float64Array, k: number): void {
  const threshold = kthLargest(w, k);
  let kept = 0;
  for (let j = 0; j < w.length; j++) if (w[j] > threshold) kept++;
  for (let j = 0; j < w.length; j++) {
    if (w[j] > threshold) continue;
    if (w[j] === threshold && kept < k) {
      kept++;
      continue;
    }
    w[j] = 0;
  }
}

/**
 * Keeps the nucleus: the largest threshold tau such that the weights >= tau hold at least a
 * fraction p of the mass, found by bisection (no full sort of the vocabulary).
 */
function keepTopP(w: Float64Array, p: number): void {
  let total = 0;
  let hi = 0;
  for (let j = 0; j < w.length; j++) {
    total += w[j];
    if (w[j] > hi) hi = w[j];
  }
  const massAbove = (tau: number): number => {
    let s = 0;
    for (let j = 0; j < w.length; j++) if (w[j] >= tau) s += w[j];
    return s;
  };
  let lo = 0;
  for (let it = 0; it < 60 && hi > lo; it++) {
    const mid = (lo + hi) / 2;
    if (massAbove(mid) >= p * total) lo = mid;
    else hi = mid;
  }
  // lo satisfies the mass condition; the max weight alone always does when hi is reached.
  const tau = massAbove(hi) >= p * total ? hi : lo;
  for (let j = 0; j < w.length; j++) if (w[j] < tau) w[j] = 0;
}

/** The k-th largest value by quickselect on a copy. */
function kthLargest(w: Float64Array, k: number): number {
  const a = Float64Array.from(w);
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}
