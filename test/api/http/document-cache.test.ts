import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';

import { DocumentCache } from '../../../src/api/http/document-cache.ts';

describe('DocumentCache', () => {
  it('returns the document kept for a text, and nothing for an unknown text', () => {
    const cache = new DocumentCache();
    const doc = parse('{ health { version } }');
    cache.set('{ health { version } }', doc);
    expect(cache.get('{ health { version } }')).toBe(doc);
    expect(cache.get('{ health { uptime } }')).toBeUndefined();
  });

  it('drops the least recently used text beyond its capacity', () => {
    const cache = new DocumentCache(2);
    const [a, b, c] = ['{ a }', '{ b }', '{ c }'];
    cache.set(a, parse(a));
    cache.set(b, parse(b));
    expect(cache.get(a)).toBeDefined(); // a is now the most recent
    cache.set(c, parse(c));
    expect(cache.size).toBe(2);
    expect(cache.get(b)).toBeUndefined();
    expect(cache.get(a)).toBeDefined();
    expect(cache.get(c)).toBeDefined();
  });

  it('does not keep texts longer than its key limit', () => {
    const cache = new DocumentCache(4, 10);
    const long = '{ health { version uptime } }';
    cache.set(long, parse(long));
    expect(cache.get(long)).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
