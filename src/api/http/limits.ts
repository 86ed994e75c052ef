/** The bounds the HTTP layer puts on every caller, on both transports; the composition root may change each. */
import { XlstmError } from '../../util/errors.ts';
import { DEFAULT_QUERY_LIMITS, type QueryLimits } from './query-limits.ts';

export interface ApiLimits extends QueryLimits {
  /** Bytes of one HTTP body or one WebSocket message. */
  readonly maxBodyBytes: number;
  /** Operations per second per token (per address for callers without one), sustained. */
  readonly ratePerSecond: number;
  /** Operations a caller may send at once after a quiet spell. */
  readonly rateBurst: number;
  /** Subscriptions open at once on one WebSocket connection. */
  readonly maxSubscriptionsPerConnection: number;
  /** Subscriptions open at once for one token (or address) over all its connections. */
  readonly maxSubscriptionsPerToken: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = Object.freeze({
  ...DEFAULT_QUERY_LIMITS,
  // A generate request is at most 16 prompts of 2048 tokens: far below a megabyte of JSON.
  maxBodyBytes: 1024 * 1024,
  ratePerSecond: 50,
  rateBurst: 200,
  maxSubscriptionsPerConnection: 32,
  maxSubscriptionsPerToken: 128,
});

/** Fills the gaps from DEFAULT_API_LIMITS and refuses values that cannot work. */
export function resolveApiLimits(partial: Partial<ApiLimits> = {}): ApiLimits {
  const limits = { ...DEFAULT_API_LIMITS, ...partial };
  for (const [key, value] of Object.entries(limits)) {
    if (key === 'introspection') {
      if (typeof value !== 'boolean') throw new XlstmError('INVALID_CONFIG', `api limit introspection expected true or false, but got ${String(value)}.`);
      continue;
    }
    const ok = key === 'ratePerSecond' ? typeof value === 'number' && Number.isFinite(value) && value > 0 : Number.isSafeInteger(value) && (value as number) >= 1;
    if (!ok) throw new XlstmError('INVALID_CONFIG', `api limit ${key} expected a ${key === 'ratePerSecond' ? 'number > 0' : 'positive integer'}, but got ${String(value)}.`);
  }
  return Object.freeze(limits);
}
