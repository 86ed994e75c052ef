import { describe, expect, it } from 'vitest';

import { Channel } from '../../src/serve/index.ts';

describe('Channel', () => {
  it('delivers pushed values in order, then done after end', async () => {
    const ch = new Channel<number>();
    ch.push(1);
    ch.push(2);
    ch.end();
    const got: number[] = [];
    for await (const v of ch) got.push(v);
    expect(got).toEqual([1, 2]);
  });

  it('hands a value straight to a waiting consumer', async () => {
    const ch = new Channel<string>();
    const next = ch.next();
    ch.push('x');
    expect(await next).toEqual({ value: 'x', done: false });
  });

  it('ends a pending next() at once on return(), and tells the producer exactly once', async () => {
    let cancelled = 0;
    const ch = new Channel<number>(() => cancelled++);
    const pending = ch.next();
    await ch.return();
    await ch.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(cancelled).toBe(1);
    ch.push(3);
    expect(await ch.next()).toEqual({ value: undefined, done: true });
  });

  it('does not call onReturn when the consumer stops after the producer ended', async () => {
    let cancelled = 0;
    const ch = new Channel<number>(() => cancelled++);
    ch.end();
    await ch.return();
    expect(cancelled).toBe(0);
  });
});
