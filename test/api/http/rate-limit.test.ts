import { describe, expect, it } from 'vitest';

import { RateLimiter } from '../../../src/api/http/rate-limit.ts';

describe('RateLimiter', () => {
  it('allows a burst, then one operation per refill interval, per key', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
    expect([1, 2, 3, 4].map(() => limiter.take('a').ok)).toEqual([true, true, true, false]);
    expect(limiter.take('b').ok).toBe(true);
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 1 });
    now += 499;
    expect(limiter.take('a').ok).toBe(false);
    now += 1;
    expect(limiter.take('a').ok).toBe(true);
    expect(limiter.take('a').ok).toBe(false);
    // A long pause refills to the burst, never past it.
    now += 60_000;
    expect([1, 2, 3, 4].map(() => limiter.take('a').ok)).toEqual([true, true, true, false]);
  });

  it('says how long to wait at a slow rate', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 0.1, burst: 1, now: () => now });
    limiter.take('k');
    expect(limiter.take('k')).toEqual({ ok: false, retryAfterSeconds: 10 });
    now = 5_000;
    expect(limiter.take('k')).toEqual({ ok: false, retryAfterSeconds: 5 });
  });

  it('keeps memory bounded: refilled buckets are forgotten first, then the oldest half', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 1, burst: 1, maxKeys: 4, now: () => now });
    for (const k of ['a', 'b', 'c', 'd']) limiter.take(k);
    now = 10_000;
    limiter.take('e');
    expect(limiter.size).toBe(1);
    for (const k of ['f', 'g', 'h']) limiter.take(k);
    limiter.take('i');
    expect(limiter.size).toBeLessThanOrEqual(4);
    expect(limiter.take('i').ok).toBe(false);
  });

  it('refuses settings that cannot work', () => {
    expect(() => new RateLimiter({ perSecond: 0, burst: 1 })).toThrow(/perSecond expected a number > 0, but got 0/);
    expect(() => new RateLimiter({ perSecond: 1, burst: Number.NaN })).toThrow(/burst expected a number > 0, but got NaN/);
  });
});
