import { describe, expect, it } from 'vitest';

import { SubscriptionQuota } from '../../../src/api/http/quota.ts';

describe('SubscriptionQuota', () => {
  it('caps each connection and each caller over its connections, and frees places on release and close', () => {
    const quota = new SubscriptionQuota({ perConnection: 2, perCaller: 3 });
    const [a, b] = [{}, {}];
    expect(quota.acquire(a, 'tok', '1')).toBeNull();
    expect(quota.acquire(a, 'tok', '2')).toBeNull();
    expect(quota.acquire(a, 'tok', '3')).toMatch(/^this connection expected at most 2 open subscriptions, but already has 2\./);
    expect(quota.acquire(b, 'tok', '1')).toBeNull();
    expect(quota.acquire(b, 'tok', '2')).toMatch(/^this token expected at most 3 open subscriptions over all its connections, but already has 3\./);
    expect(quota.acquire({}, 'other', '1')).toBeNull();
    quota.release(a, '1');
    quota.release(a, '1');
    expect(quota.held('tok')).toBe(2);
    expect(quota.acquire(b, 'tok', '2')).toBeNull();
    quota.releaseAll(b);
    quota.releaseAll(a);
    expect(quota.held('tok')).toBe(0);
    expect(quota.held('other')).toBe(1);
  });

  it('counts an id once', () => {
    const quota = new SubscriptionQuota({ perConnection: 1, perCaller: 1 });
    const c = {};
    expect(quota.acquire(c, 't', 'x')).toBeNull();
    expect(quota.acquire(c, 't', 'x')).toBeNull();
    expect(quota.held('t')).toBe(1);
  });
});
