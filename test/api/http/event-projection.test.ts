import 'reflect-metadata';
import { parse, subscribe, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { planFor, subscribeProjected } from '../../../src/api/http/event-projection.ts';
import { buildApiSchema } from '../../../src/api/schema/index.ts';
import type { GenerateEvent } from '../../../src/serve/index.ts';

// The projection's fallback is graphql's execute: counted, to see which path each event took.
const executed = vi.hoisted(() => ({ n: 0 }));
vi.mock('graphql', async (importOriginal) => {
  const graphql = await importOriginal<typeof import('graphql')>();
  return {
    ...graphql,
    execute: (...a: Parameters<typeof graphql.execute>) => {
      executed.n++;
      return graphql.execute(...a);
    },
  };
});

/** Every event kind, with values that exercise serialisation: a split character (''), unicode, an internal error code. */
const EVENTS: GenerateEvent[] = [
  { kind: 'token', promptIndex: 0, tokenId: 464, text: 'The', position: 7, logprob: -1.25 },
  { kind: 'token', promptIndex: 1, tokenId: 10263, text: '', position: 3, logprob: -0.5 },
  { kind: 'token', promptIndex: 1, tokenId: 235, text: 'é✓', position: 4, logprob: -3.0000001 },
  { kind: 'error', promptIndex: 1, code: 'INTERNAL', message: 'a worker died' },
  { kind: 'finish', promptIndex: 1, finishReason: 'ERROR', generatedTokens: 2, seed: 9 },
  { kind: 'finish', promptIndex: 0, finishReason: 'LENGTH', generatedTokens: 1, seed: 9 },
];

/** A context whose serving layer streams EVENTS; `returned` counts cancellations reaching the stream. */
function fakeContext(events: readonly GenerateEvent[] = EVENTS) {
  const counters = { returned: 0 };
  const serving = {
    generate: () => {
      let i = 0;
      return {
        seed: 9,
        next: async () => (i < events.length ? { done: false, value: events[i++] } : { done: true, value: undefined }),
        return: async () => {
          counters.returned++;
          i = events.length;
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    },
  };
  return { context: { serving }, counters };
}

async function collect(result: AsyncIterable<ExecutionResult> | ExecutionResult): Promise<string[]> {
  if (!(Symbol.asyncIterator in result)) return [JSON.stringify(result)];
  const out: string[] = [];
  for await (const r of result as AsyncIterable<ExecutionResult>) out.push(JSON.stringify(r));
  return out;
}

const INPUT = { prompts: ['a', 'b'], maxTokens: 4 };

/** Selection shapes: each is checked against graphql's own subscribe, byte for byte (so key order too). */
const SHAPES: Record<string, string> = {
  typename: `subscription($input: GenerateInput!) { generate(input: $input) { __typename } }`,
  everyField: `subscription($input: GenerateInput!) { generate(input: $input) {
    __typename
    ... on TokenEvent { promptIndex tokenId text position logprob }
    ... on FinishEvent { promptIndex finishReason generatedTokens seed }
    ... on ErrorEvent { promptIndex code message } } }`,
  aliasesAndRepeats: `subscription G($input: GenerateInput!) { g: generate(input: $input) {
    ... on TokenEvent { t: text id: tokenId text promptIndex }
    kind: __typename
    ... on FinishEvent { why: finishReason promptIndex }
    ... on TokenEvent { promptIndex logprob } } }`,
  namedFragments: `subscription($input: GenerateInput!) { generate(input: $input) { ...tok ...fin ...any } }
    fragment tok on TokenEvent { tokenId position }
    fragment fin on FinishEvent { seed generatedTokens }
    fragment any on GenerateEvent { __typename }`,
  onlyFinish: `subscription($input: GenerateInput!) { generate(input: $input) { ... on FinishEvent { finishReason } } }`,
  literalInput: `subscription { generate(input: { prompts: ["x"], maxTokens: 2 }) { __typename ... on ErrorEvent { code } } }`,
};

let schema: GraphQLSchema;

beforeAll(async () => {
  schema = await buildApiSchema();
});

beforeEach(() => {
  executed.n = 0;
});

describe('subscription events projected without a per-event execute', () => {
  it.each(Object.entries(SHAPES))('the %s shape is planned and yields exactly what graphql executes', async (_name, query) => {
    const document = parse(query);
    const args = (ctx: unknown) => ({ schema, document, variableValues: { input: INPUT }, contextValue: ctx });
    expect(planFor(args(fakeContext().context))).not.toBeNull();
    const want = await collect(await subscribe(args(fakeContext().context)));
    executed.n = 0;
    const got = await collect(await subscribeProjected(args(fakeContext().context)));
    expect(executed.n).toBe(0);
    expect(want).toHaveLength(EVENTS.length);
    expect(got).toEqual(want);
  });

  it('maps an internal error code to its public one, as the resolver does', async () => {
    const document = parse(SHAPES.everyField);
    const got = (await collect(await subscribeProjected({ schema, document, variableValues: { input: INPUT }, contextValue: fakeContext().context }))).map(
      (s) => JSON.parse(s) as { data: { generate: { __typename: string; code?: string } } },
    );
    const error = got.find((r) => r.data.generate.__typename === 'ErrorEvent');
    expect(error?.data.generate.code).toBe('INTERNAL_SERVER_ERROR');
  });

  it.each([
    ['a directive', `subscription($input: GenerateInput!, $yes: Boolean!) { generate(input: $input) { __typename ... on TokenEvent { text @include(if: $yes) } } }`],
    ['a directive on the root field', `subscription($input: GenerateInput!) { generate(input: $input) @skip(if: false) { __typename } }`],
  ])('leaves %s to graphql and still yields what graphql executes', async (_name, query) => {
    const document = parse(query);
    const args = (ctx: unknown) => ({ schema, document, variableValues: { input: INPUT, yes: true }, contextValue: ctx });
    expect(planFor(args(fakeContext().context))).toBeNull();
    const got = await collect(await subscribeProjected(args(fakeContext().context)));
    expect(executed.n).toBe(EVENTS.length);
    expect(got).toEqual(await collect(await subscribe(args(fakeContext().context))));
  });

  it('falls back per event where the value cannot be serialised as the schema says', async () => {
    const odd: GenerateEvent[] = [
      EVENTS[0],
      { kind: 'token', promptIndex: 0, tokenId: 1.5, text: 'x', position: 8, logprob: -1 },
      { kind: 'token', promptIndex: 0, tokenId: 2, text: 'y', position: 9, logprob: Number.NaN },
    ];
    const document = parse(SHAPES.everyField);
    const args = (ctx: unknown) => ({ schema, document, variableValues: { input: INPUT }, contextValue: ctx });
    const want = await collect(await subscribe(args(fakeContext(odd).context)));
    expect(want.slice(1).every((s) => s.includes('"errors"'))).toBe(true);
    executed.n = 0;
    expect(await collect(await subscribeProjected(args(fakeContext(odd).context)))).toEqual(want);
    expect(executed.n).toBe(2);
  });

  it('returns bad variables as graphql does, without a stream', async () => {
    const document = parse(SHAPES.typename);
    const args = { schema, document, variableValues: { input: { prompts: 'not a list of one', maxTokens: 'x' } }, contextValue: fakeContext().context };
    expect(await collect(await subscribeProjected(args))).toEqual(await collect(await subscribe(args)));
  });

  it('passes an unsubscribe to the stream at once, even while a next() is waiting', async () => {
    const counters = { returned: 0 };
    const never = {
      generate: () => ({
        seed: 1,
        next: () => new Promise(() => {}),
        return: async () => {
          counters.returned++;
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      }),
    };
    const it = (await subscribeProjected({ schema, document: parse(SHAPES.typename), variableValues: { input: INPUT }, contextValue: { serving: never } })) as AsyncIterableIterator<ExecutionResult>;
    void it.next();
    await expect(it.return?.()).resolves.toEqual({ done: true, value: undefined });
    expect(counters.returned).toBe(1);
  });
});
