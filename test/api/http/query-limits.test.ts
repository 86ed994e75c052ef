import 'reflect-metadata';
import { getIntrospectionQuery, parse, validate, specifiedRules, type GraphQLSchema } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';

import { costLimit, depthLimit, listNestingLimit, queryLimitRules, DEFAULT_QUERY_LIMITS } from '../../../src/api/http/query-limits.ts';
import { buildApiSchema } from '../../../src/api/schema/index.ts';

let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await buildApiSchema();
});

const messages = (doc: string, rules = queryLimitRules(DEFAULT_QUERY_LIMITS)): string[] => validate(schema, parse(doc), rules).map((e) => e.message);

/** The one number a limit's message reports ("but got N"). */
const measured = (doc: string, rule: ReturnType<typeof depthLimit>): number => {
  const m = validate(schema, parse(doc), [rule]).map((e) => e.message)[0] ?? '';
  return Number(/but got (\d+)/.exec(m)?.[1] ?? 0);
};

describe('document limits', () => {
  it("accept GraphiQL's introspection query under the defaults (depth 15, lists nested 3 deep)", () => {
    expect(messages(getIntrospectionQuery())).toEqual([]);
    expect(measured(getIntrospectionQuery(), depthLimit(0))).toBe(15);
    expect(measured(getIntrospectionQuery(), listNestingLimit(0))).toBe(3);
  });

  it.each<[string, string, number]>([
    ['a flat query', '{ health { phase } }', 2],
    ['a fragment', '{ ...F } fragment F on Query { checkpoints { items { config { signature } } } }', 4],
    ['an inline fragment', '{ ... on Query { models { checkpoint } } }', 2],
    ['the deepest branch', '{ health { phase } checkpoints { items { id } } }', 3],
  ])('measure the depth of %s', (_name, doc, depth) => {
    expect(measured(doc, depthLimit(0))).toBe(depth);
  });

  it.each<[string, string, number]>([
    ['one field', '{ health { phase } }', 2],
    ['aliases, each counted', '{ a: health { phase } b: health { phase } }', 4],
    ['a page of a literal size', '{ checkpoints(first: 7) { items { id } } }', 1 + 7 * 2],
    ['a page of the default size (20)', '{ checkpoints { items { id } } }', 1 + 20 * 2],
    ['a page sized by a variable (counted as the largest page)', 'query($n: Int!) { checkpoints(first: $n) { items { id } } }', 1 + 100 * 2],
    ['a fragment used twice', '{ a: checkpoints(first: 1) { ...C } b: checkpoints(first: 1) { ...C } } fragment C on CheckpointPage { items { id step } }', 2 * (1 + 3)],
  ])('measure the cost of %s', (_name, doc, cost) => {
    expect(measured(doc, costLimit(0, 100))).toBe(cost);
  });

  it('refuses introspection lists nested past three (types > fields > type > fields ...)', () => {
    expect(messages('{ __schema { types { fields { type { fields { name } } } } } }')).toEqual([]);
    expect(messages('{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }')).toEqual([
      'query expected lists of objects nested at most 3 deep, but got 4. Hint: fetch the inner lists in a second query.',
    ]);
  });

  it('measures fragments that fan out exponentially in linear time, and refuses them', () => {
    // F0 spreads F1 twice, ..., F38 spreads F39 twice, F39 has one field: 2^39 fields once expanded.
    const fragments = Array.from({ length: 40 }, (_, i) => `fragment F${i} on Query { ${i === 39 ? '__typename' : `...F${i + 1} ...F${i + 1}`} }`);
    const doc = `{ ...F0 } ${fragments.join(' ')}`;
    const started = performance.now();
    const out = messages(doc);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(out).toEqual([expect.stringMatching(/^query expected a cost of at most 5000 .*, but got 549755813888\. Hint:/)]);
  });

  it('survives fragment cycles and unknown fields (other rules report them)', () => {
    const cyclic = '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A health { phase } }';
    const all = validate(schema, parse(cyclic), [...specifiedRules, ...queryLimitRules(DEFAULT_QUERY_LIMITS)]).map((e) => e.message);
    expect(all.some((m) => /Cannot spread fragment "A" within itself/.test(m))).toBe(true);
    expect(messages('{ nope { deeper { still } } }', [depthLimit(2)])).toEqual(['query expected fields nested at most 2 deep, but got 3 levels. Hint: split the query or ask for fewer nested fields.']);
  });
});
