/**
 * What the scheduler needs from whatever holds a running batch: rows that are admitted with a prompt, stepped
 * one token at a time and retired. InProcessDecoder runs it on the model in this thread, DecodePool on worker
 * threads; both sample with the caller's uniforms, so a row's tokens depend only on its prompt and its draws.
 */
import type { SamplingParams } from '../core/index.ts';
import type { XlstmError } from '../util/errors.ts';

/** A sequence's handle in a decoder: never reused, so a stale id cannot reach another sequence. */
export type RowId = number;

export interface AdmitRequest {
  readonly tokens: readonly number[];
  readonly sampling: SamplingParams;
  /** The sequence's next uniform draw in [0, 1): sampleToken consumes exactly one per token, greedy included. */
  readonly uniform: number;
}

export interface StepInput {
  /** -1: the token the row sampled last (decoders that step `ahead` only). */
  readonly token: number;
  readonly sampling: SamplingParams;
  readonly uniform: number;
}

export interface Sampled {
  readonly id: number;
  readonly logprob: number;
}

export interface Admitted extends Sampled {
  readonly row: RowId;
}

export interface Decoder {
  /** Threads that prefill and step side by side: prompts admitted together are spread over them. */
  readonly threads: number;
  /** Steps run off this thread: the caller can do its own work between posting a step and awaiting it. */
  readonly concurrent: boolean;
  /**
   * A step may be posted before the previous one answered: a StepInput token of -1 then stands for the token the
   * row sampled last (calls take effect in call order).
   */
  readonly ahead: boolean;
  /**
   * The lane of a live row: lanes are groups of rows that step on their own (a step may take one lane's rows
   * while another lane's step runs).
   */
  laneOf(row: RowId): number;
  /** Live rows. */
  readonly size: number;
  /** Set once the decoder is unusable (a worker thread died); every later call rejects with it. */
  readonly failure: XlstmError | null;
  /** Prefills each prompt (each on its own tokens only) and samples its first token. All or nothing: a failure adds no row. */
  admit(prompts: readonly AdmitRequest[]): Promise<Admitted[]>;
  /**
   * One token of every live row of the lanes `inputs` touches (it names each of them exactly once). After a
   * rejection, retire the rows.
   */
  step(inputs: ReadonlyMap<RowId, StepInput>): Promise<Map<RowId, Sampled>>;
  /** Frees the rows' states; the others keep their places. */
  retire(rows: readonly RowId[]): Promise<void>;
  /** Frees everything; safe to call twice. */
  close(): Promise<void>;
}
