/**
 * A row's next token from its logits, as every decoder samples it (in process and on worker threads alike), so
 * a sequence's tokens never depend on where it ran.
 */
import { sampleToken, type SamplingParams } from '../core/index.ts';
import type { Sampled } from './decoder.ts';

/**
 * `uniform` stands in for the sequence's Rng (sampleToken draws exactly one per call). `suppressToken` (the
 * padding token) gets logit -Infinity and leaves the normaliser. `logZ`, the row's log-sum-exp when computed
 * elsewhere (on the device), saves sampleToken its pass of exps; without it sampleToken computes the row's
 * maximum and log-sum-exp (as host/math.ts logSumExpRow) in the same passes that draw. The row is modified.
 */
export function sampleRow(row: Float32Array, sampling: SamplingParams, uniform: number, suppressToken: number | null, logZ?: number): Sampled {
  if (suppressToken !== null && suppressToken < row.length) {
    // Removing the token's mass from a given normaliser: log(Z - e^l) = log Z + log1p(-e^(l - log Z)).
    if (logZ !== undefined) logZ += Math.log1p(-Math.exp(row[suppressToken] - logZ));
    row[suppressToken] = -Infinity;
  }
  return sampleToken(row, sampling, { uniform: () => uniform }, logZ);
}
