/** Messages between a DecodePool (decode-pool.ts) and its worker threads (decode-worker.ts). */
import type { ModelConfig, SamplingParams } from '../core/index.ts';
import type { ErrorCode } from '../util/errors.ts';

/** Every weight in one SharedArrayBuffer: each worker reads it in place, so it is copied once, not per thread. */
export interface SharedWeights {
  readonly buffer: SharedArrayBuffer;
  /** `offset` and `length` count float32 elements. */
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly offset: number; readonly length: number }[];
}

/** What a worker is started with (as its workerData). */
export interface WorkerInit {
  readonly index: number;
  readonly config: ModelConfig;
  readonly backend: 'wasm' | 'cpu';
  readonly weights: SharedWeights;
  /** A token never to sample (the padding token): its logit is set to -Infinity before sampling. */
  readonly suppressToken: number | null;
}

export interface PromptJob {
  readonly tokens: Int32Array;
  readonly sampling: SamplingParams;
  readonly uniform: number;
}

export type ToWorker =
  /** Prefill each prompt alone, sample its first token, append the rows after the worker's existing ones. */
  | { readonly type: 'admit'; readonly id: number; readonly prompts: readonly PromptJob[] }
  /**
   * One step of every row the worker holds, in its row order: a token of -1 is the row's last sampled one;
   * `sampling` packs temperature, topK, topP per row (typed arrays clone far faster than an object per row).
   */
  | { readonly type: 'step'; readonly id: number; readonly tokens: Int32Array; readonly sampling: Float64Array; readonly uniforms: Float64Array }
  /** Keep only these rows (indices into the worker's rows, in order); the rest are freed. */
  | { readonly type: 'retain'; readonly id: number; readonly keep: Int32Array };

export type FromWorker =
  | { readonly type: 'ready' }
  /** Sampled ids and their log-probabilities, one per prompt (admit) or per row (step). */
  | { readonly type: 'sampled'; readonly id: number; readonly ids: Int32Array; readonly logprobs: Float64Array }
  | { readonly type: 'retained'; readonly id: number }
  /** A call failed; the worker keeps running. id 0 is the start-up. */
  | { readonly type: 'error'; readonly id: number; readonly code: ErrorCode | null; readonly message: string };
