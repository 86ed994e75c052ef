/**
 * A token bucket per caller: each operation takes one token, tokens come back at a steady rate up to a burst,
 * so a caller may go fast for a moment but not for long. Idle buckets are forgotten, so memory stays bounded.
 */
export interface RateLimitOptions {
  /** Operations per second, sustained. */
  readonly perSecond: number;
  /** Operations at once after a quiet spell (the bucket's size). */
  readonly burst: number;
  /** Buckets kept at most; full ones are dropped first (they behave exactly like new ones). */
  readonly maxKeys?: number;
  readonly now?: () => number;
}

export type RateDecision = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    for (const key of ['perSecond', 'burst'] as const) {
      const v = options[key];
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`rate limit ${key} expected a number > 0, but got ${v}.`);
    }
    this.now = options.now ?? Date.now;
  }

  /** Takes one token from `key`'s bucket. */
  take(key: string): RateDecision {
    const now = this.now();
    const bucket = this.refill(key, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.options.perSecond)) };
  }

  /** Buckets held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private refill(key: string, now: number): Bucket {
    const { perSecond, burst } = this.options;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= (this.options.maxKeys ?? 10_000)) this.forgetFull(now);
      bucket = { tokens: burst, at: now };
      this.buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    return bucket;
  }

  /** Drops buckets that have refilled (indistinguishable from fresh ones); if none has, the oldest half. */
  private forgetFull(now: number): void {
    const { perSecond, burst } = this.options;
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) this.buckets.delete(key);
    }
    if (this.buckets.size >= (this.options.maxKeys ?? 10_000)) {
      const drop = Math.ceil(this.buckets.size / 2);
      let i = 0;
      for (const key of this.buckets.keys()) {
        if (i++ >= drop) break;
        this.buckets.delete(key);
      }
    }
  }
}
