/** The bounds one server enforces on generation: batch and queue sizes, request sizes, defaults. */
import { XlstmError } from '../util/errors.ts';

export interface ServeLimits {
  /** Sequences stepped together in one batch per model; more wait in the queue. */
  readonly maxActive: number;
  /** Sequences waiting for a batch row per model; beyond it a request fails at once with CAPACITY. */
  readonly maxQueued: number;
  /** Largest maxTokens a request may ask for. */
  readonly maxTokens: number;
  /** maxTokens when a request leaves it out. */
  readonly defaultMaxTokens: number;
  /** Prompts in one generate request. */
  readonly maxPrompts: number;
  /** Tokens in one prompt. */
  readonly maxPromptTokens: number;
  /** Stop strings in one request, and characters in each. */
  readonly maxStops: number;
  readonly maxStopLength: number;
}

export const DEFAULT_LIMITS: ServeLimits = Object.freeze({
  maxActive: 64,
  maxQueued: 256,
  maxTokens: 1024,
  defaultMaxTokens: 64,
  maxPrompts: 16,
  maxPromptTokens: 2048,
  maxStops: 8,
  maxStopLength: 64,
});

/** Fills the gaps from DEFAULT_LIMITS and refuses values that cannot work. */
export function resolveLimits(partial: Partial<ServeLimits> = {}): ServeLimits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  // A lower maxTokens brings the default down with it unless the default was chosen too.
  if (partial.defaultMaxTokens === undefined) limits.defaultMaxTokens = Math.min(DEFAULT_LIMITS.defaultMaxTokens, limits.maxTokens);
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < (key === 'maxQueued' ? 0 : 1)) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `serve limit ${key} expected a ${key === 'maxQueued' ? 'non-negative' : 'positive'} integer, but got ${String(value)}.`,
      );
    }
  }
  if (limits.defaultMaxTokens > limits.maxTokens) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `serve limit defaultMaxTokens expected at most maxTokens (${limits.maxTokens}), but got ${limits.defaultMaxTokens}.`,
    );
  }
  return Object.freeze(limits);
}
