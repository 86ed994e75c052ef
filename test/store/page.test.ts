import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, pageSize, toPage } from '../../src/store/page.ts';

describe('cursors', () => {
  it('round-trip a sequence number for their own table only', () => {
    const cursor = encodeCursor('runs', 1234);
    expect(cursor).not.toContain('1234'); // opaque to clients
    expect(decodeCursor('runs', cursor)).toBe(1234);
    expect(decodeCursor('runs', null)).toBeNull();
    expect(decodeCursor('runs', undefined)).toBeNull();
    expect(() => decodeCursor('checkpoints', cursor)).toThrowError(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it.each([[-1], [1.5], [101]])('page size %d is refused', (first) => {
    expect(() => pageSize(first)).toThrow(/first expected an integer in \[0, 100\]/);
  });

  it('defaults the page size to 20', () => {
    expect(pageSize(undefined)).toBe(20);
  });
});

describe('toPage', () => {
  const rows = [{ seq: 9 }, { seq: 7 }, { seq: 4 }];
  it('uses the extra row only to signal a next page', () => {
    const page = toPage('runs', rows, 2, (r) => r.seq);
    expect(page).toEqual({ items: [9, 7], endCursor: encodeCursor('runs', 7), hasNextPage: true });
    expect(toPage('runs', rows, 3, (r) => r.seq).hasNextPage).toBe(false);
    expect(toPage('runs', [], 0, (r: { seq: number }) => r.seq)).toEqual({ items: [], endCursor: null, hasNextPage: false });
  });
});
