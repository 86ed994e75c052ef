import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ConfigSource } from '../../../src/api/schema/index.ts';
import { startTestServer, subscribeAll, type TestServer } from '../../support/api-server.ts';

const SECRET = 'connection string postgres://admin:hunter2@db';
/** A config source that fails the way a bug would: a plain Error with private details. */
const BROKEN: ConfigSource = {
  list: async () => {
    throw new Error(SECRET);
  },
  get: async () => null,
};

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ configs: BROKEN, limits: { maxTokens: 50, maxPrompts: 4, maxPromptTokens: 16 } });
});

afterAll(async () => {
  await t?.close();
});

describe('generate input validation', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['no prompts', { prompts: [] }, /^input\.prompts expected at least one prompt, but got an empty list\. Hint:/],
    ['an empty prompt', { prompts: ['ok', ''] }, /^input\.prompts\[1\] expected a non-empty string, but got ""\. Hint:/],
    ['temperature -1', { prompts: ['a'], temperature: -1 }, /^input\.temperature expected a number >= 0, but got -1\. Hint:/],
    ['topP 0', { prompts: ['a'], topP: 0 }, /^input\.topP expected a number in \(0, 1\], but got 0\. Hint:/],
    ['topP 1.5', { prompts: ['a'], topP: 1.5 }, /^input\.topP expected a number in \(0, 1\], but got 1\.5\. Hint:/],
    ['topK 0', { prompts: ['a'], topK: 0 }, /^input\.topK expected an integer >= 1, but got 0\. Hint:/],
    ['maxTokens over the limit', { prompts: ['a'], maxTokens: 51 }, /^input\.maxTokens expected an integer from 1 to 50, but got 51\. Hint:/],
    ['too many prompts', { prompts: ['a', 'b', 'c', 'd', 'e'] }, /^input\.prompts expected at most 4 prompts, but got 5\. Hint:/],
    ['a prompt longer than the limit', { prompts: ['a', Array(20).fill('word').join(' ')] }, /^input\.prompts expected at most 16 tokens in prompt 1, but got 20\. Hint:/],
    ['an unknown checkpoint', { prompts: ['a'], checkpoint: 'no-such-model' }, /^input\.checkpoint expected the id of a checkpoint under .*, but got "no-such-model"\. Hint:/],
    ['a checkpoint id outside the root', { prompts: ['a'], checkpoint: '../etc' }, /^input\.checkpoint expected a checkpoint id .*, but got "\.\.\/etc"\. Hint:/],
  ])('refuses %s with BAD_USER_INPUT naming the field, the expectation and the value', async (_name, input, message) => {
    const results = await subscribeAll(t.client(), input);
    expect(results).toHaveLength(1);
    const [error] = results[0].errors ?? [];
    expect(error?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(error?.message).toMatch(message);
  });

  it('keeps serving after refusing bad input', async () => {
    const results = await subscribeAll(t.client(), { prompts: ['still here'], maxTokens: 2 });
    expect(results.at(-1)?.data?.generate).toMatchObject({ __typename: 'FinishEvent', finishReason: 'LENGTH' });
    expect((await t.query('{ health { phase } }')).data).toEqual({ health: { phase: 'SERVING' } });
  });

  it('validates plain arguments too (checkpoints page size), over HTTP', async () => {
    const r = await t.query('{ checkpoints(first: 0) { totalCount } }');
    expect(r.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(r.errors?.[0].message).toMatch(/^first expected an integer from 1 to 100, but got 0\. Hint:/);
  });
});

describe('error masking', () => {
  it('masks an unexpected error over HTTP', async () => {
    const r = await t.query('{ configs { name } }');
    expect(r.errors).toEqual([
      { message: 'Internal server error', locations: [{ line: 1, column: 3 }], path: ['configs'], extensions: { code: 'INTERNAL_SERVER_ERROR', errorId: expect.any(String) } },
    ]);
    expect(JSON.stringify(r)).not.toContain('hunter2');
  });

  it('masks an unexpected error over graphql-ws', async () => {
    const results: unknown[] = [];
    for await (const r of t.client().iterate({ query: '{ configs { name } }' })) results.push(r);
    expect(results).toEqual([
      {
        data: null,
        errors: [{ message: 'Internal server error', locations: [{ line: 1, column: 3 }], path: ['configs'], extensions: { code: 'INTERNAL_SERVER_ERROR', errorId: expect.any(String) } }],
      },
    ]);
  });

  it('passes platform errors through with their message on both transports', async () => {
    const query = 'mutation { loadModel(checkpoint: "absent") { checkpoint } }';
    const overHttp = await t.query(query);
    const overWs: { errors?: unknown }[] = [];
    for await (const r of t.client().iterate({ query })) overWs.push(r as { errors?: unknown });
    for (const errors of [overHttp.errors, overWs[0].errors] as { message: string; extensions: unknown }[][]) {
      expect(errors[0].extensions).toEqual({ code: 'BAD_USER_INPUT', reason: 'CHECKPOINT_NOT_FOUND' });
      expect(errors[0].message).toMatch(/^checkpoint expected the id of a checkpoint under .*, but got "absent"\. Hint:/);
    }
  });

  it('reports GraphQL validation errors with their words', async () => {
    const r = await t.query('{ nope }');
    expect(r.errors?.[0]).toMatchObject({ message: 'Cannot query field "nope" on type "Query".', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
  });
});
