import 'reflect-metadata';
import { getIntrospectionQuery } from 'graphql';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { AccessPolicy, CLOSE_UNAUTHENTICATED, parseTokenList } from '../../../src/api/http/index.ts';
import { GENERATE, startTestServer, until, type TestServer } from '../../support/api-server.ts';

const ADMIN = 'admin-token-0123456789';
const READER = 'read-token-0123456789';
const TOKENS = parseTokenList(`${ADMIN}:admin,${READER}:read`, 'test tokens');

type Json = Record<string, any>;

/** The first result of an operation over graphql-ws, or the close event when the connection is refused. */
async function once(client: Client, query: string, variables: Json = {}): Promise<Json> {
  try {
    for await (const r of client.iterate({ query, variables })) return r as Json;
    return { completed: true };
  } catch (e) {
    if (Array.isArray(e)) return { errors: e.map((x: { toJSON?: () => unknown }) => x) };
    return { closed: { code: (e as { code: number }).code, reason: String((e as { reason: string }).reason) } };
  }
}

/** POST /graphql with raw headers, for status codes and headers. */
async function post(t: TestServer, body: Json, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Json }> {
  const res = await fetch(t.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Json };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const LOAD_SECOND = 'mutation { loadModel(checkpoint: "second") { checkpoint phase } }';

describe('tokens required (no public reads)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ ids: ['tiny', 'second'], defaultId: 'tiny', access: new AccessPolicy(TOKENS) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses HTTP without a token or with a wrong one: 401, UNAUTHENTICATED, WWW-Authenticate, and nothing runs', async () => {
    for (const headers of [{}, bearer('wrong-token'), { authorization: 'Basic abc' }]) {
      const r = await post(t, { query: LOAD_SECOND }, headers);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(r.json).toEqual({ errors: [{ message: expect.stringMatching(/^this request expected .*, but got .*\. Hint:/), extensions: { code: 'UNAUTHENTICATED' } }] });
    }
    expect(t.serving.registry.isLoaded('second')).toBe(false);
  });

  it('lets a read token query but not mutate: 403 FORBIDDEN, and the mutation does not run', async () => {
    expect((await post(t, { query: '{ health { phase } }' }, bearer(READER))).json).toEqual({ data: { health: { phase: 'SERVING' } } });
    const r = await post(t, { query: LOAD_SECOND }, bearer(READER));
    expect(r.status).toBe(403);
    expect(r.json.errors[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' }, message: expect.stringMatching(/scope admin/) });
    expect(r.json.data).toBeUndefined();
    expect(t.serving.registry.isLoaded('second')).toBe(false);
  });

  it('refuses graphql-ws connections without a valid token at connection time (4401 UNAUTHENTICATED)', async () => {
    for (const client of [t.client(), t.client('wrong-token')]) {
      const r = await once(client, '{ health { phase } }');
      expect(r.closed?.code).toBe(CLOSE_UNAUTHENTICATED);
      expect(r.closed?.reason).toMatch(/^UNAUTHENTICATED: this request expected/);
    }
  });

  it('lets a read token stream generate over graphql-ws, but refuses its mutations with FORBIDDEN', async () => {
    const client = t.client(READER);
    const events: Json[] = [];
    for await (const r of client.iterate({ query: GENERATE, variables: { input: { prompts: ['hi'], maxTokens: 2 } } })) events.push(r as Json);
    expect(events.at(-1)?.data.generate).toMatchObject({ __typename: 'FinishEvent', finishReason: 'LENGTH' });
    const refused = await once(client, LOAD_SECOND);
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'FORBIDDEN' } });
    expect(t.serving.registry.isLoaded('second')).toBe(false);
  });

  it('lets an admin token mutate on both transports', async () => {
    expect((await post(t, { query: LOAD_SECOND }, bearer(ADMIN))).json).toEqual({ data: { loadModel: { checkpoint: 'second', phase: 'READY' } } });
    const r = await once(t.client(ADMIN), 'mutation { unloadModel(checkpoint: "second") }');
    expect(r).toEqual({ data: { unloadModel: true } });
  });

  it('counts refusals by code on /metrics', async () => {
    const text = await (await fetch(t.httpUrl.replace(/\/graphql$/, '/metrics'))).text();
    expect(text).toMatch(/^xlstm_failures_total\{code="UNAUTHENTICATED"\} [1-9]/m);
    expect(text).toMatch(/^xlstm_failures_total\{code="FORBIDDEN"\} [1-9]/m);
  });
});

describe('public reads', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ access: new AccessPolicy(TOKENS, { publicRead: true }) });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves queries and subscriptions without a token, refuses mutations without one, and still refuses a wrong token', async () => {
    expect((await post(t, { query: '{ health { phase } }' })).json.data).toEqual({ health: { phase: 'SERVING' } });
    const ws = await once(t.client(), '{ health { phase } }');
    expect(ws).toEqual({ data: { health: { phase: 'SERVING' } } });
    const mutation = await post(t, { query: 'mutation { unloadModel(checkpoint: "tiny") }' });
    expect([mutation.status, mutation.json.errors[0].extensions.code]).toEqual([401, 'UNAUTHENTICATED']);
    expect(t.serving.registry.isLoaded('tiny')).toBe(true);
    expect((await once(t.client(), 'mutation { unloadModel(checkpoint: "tiny") }')).errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
    expect((await post(t, { query: '{ health { phase } }' }, bearer('typo'))).status).toBe(401);
    expect((await once(t.client('typo'), '{ health { phase } }')).closed?.code).toBe(CLOSE_UNAUTHENTICATED);
    expect(t.serving.registry.isLoaded('tiny')).toBe(true);
  });
});

describe('limits on both transports', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      access: new AccessPolicy(TOKENS),
      apiLimits: { maxDepth: 3, maxCost: 300, maxTokens: 1000, introspection: false, maxBodyBytes: 16 * 1024, maxSubscriptionsPerConnection: 1, maxSubscriptionsPerToken: 2 },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** The first error of `query` over HTTP and over graphql-ws, which must be the same. */
  async function refusedOnBoth(query: string): Promise<Json> {
    const http = await post(t, { query }, bearer(READER));
    const ws = await once(t.client(READER), query);
    expect(http.json.errors?.[0]).toBeDefined();
    expect(ws.errors?.[0]).toEqual(http.json.errors[0]);
    return http.json.errors[0];
  }

  it('refuses a document nested past the depth limit, the same way over HTTP and graphql-ws', async () => {
    const e = await refusedOnBoth('{ checkpoints { items { config { signature } } } }');
    expect(e).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' }, message: expect.stringMatching(/^query expected fields nested at most 3 deep, but got 4 levels\. Hint:/) });
    expect((await post(t, { query: '{ checkpoints { items { id } } }' }, bearer(READER))).json.data.checkpoints.items).toEqual([{ id: 'tiny' }]);
  });

  it('refuses a document over the cost limit, counting aliases one by one and pages by their size', async () => {
    const aliased = `{ ${Array.from({ length: 301 }, (_, i) => `h${i}: __typename`).join(' ')} }`;
    expect((await refusedOnBoth(aliased)).message).toMatch(/^query expected a cost of at most 300 .*, but got 301\. Hint:/);
    // 1 (checkpoints) + 100 items x (1 (items) + 2 (id, step) + 1 (totalCount)) = 401.
    expect((await refusedOnBoth('{ checkpoints(first: 100) { items { id step } totalCount } }')).message).toMatch(/but got 401\./);
  });

  it('refuses introspection when it is switched off, on both transports, and still answers __typename', async () => {
    const e = await refusedOnBoth('{ __schema { queryType { name } } }');
    expect(e).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED' }, message: expect.stringMatching(/introspection/i) });
    expect((await post(t, { query: '{ __typename }' }, bearer(READER))).json).toEqual({ data: { __typename: 'Query' } });
  });

  it('refuses a document with more lexical tokens than the parser reads, and a syntax error, without closing the socket', async () => {
    const many = `{ ${'__typename '.repeat(1000)}}`;
    // graphql-js spells it "more that".
    expect(await refusedOnBoth(many)).toMatchObject({ extensions: { code: 'GRAPHQL_PARSE_FAILED' }, message: expect.stringMatching(/more th(?:an|at) 1000 tokens/) });
    const client = t.client(READER);
    expect((await once(client, '{ health { ')).errors?.[0]).toMatchObject({ extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    expect(await once(client, '{ health { phase } }')).toEqual({ data: { health: { phase: 'SERVING' } } });
  });

  it('refuses an HTTP body over the size limit with 413 and closes a WebSocket sending a larger message (1009)', async () => {
    const big = { query: '{ health { phase } }', variables: { pad: 'x'.repeat(20 * 1024) } };
    const res = await fetch(t.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(READER) }, body: JSON.stringify(big) });
    expect(res.status).toBe(413);
    expect(await res.text()).toMatch(/request body expected at most 16384 bytes/);
    const r = await once(t.client(READER), '{ health { phase } }', { pad: 'x'.repeat(20 * 1024) });
    expect(r.closed?.code).toBe(1009);
  });

  it('keeps Apollo\'s CSRF prevention: a GET or a text/plain POST without a preflight header is refused', async () => {
    const get = await fetch(`${t.httpUrl}?query=${encodeURIComponent('{ health { phase } }')}`, { headers: { accept: 'application/json', ...bearer(READER) } });
    expect(get.status).toBe(400);
    expect(await get.text()).toMatch(/CSRF/);
    const plain = await fetch(t.httpUrl, { method: 'POST', headers: { 'content-type': 'text/plain', ...bearer(READER) }, body: '{"query":"{ health { phase } }"}' });
    expect(plain.status).toBe(400);
  });

  it('caps open subscriptions per connection and per token, and frees the places when they end', async () => {
    const long = { query: GENERATE, variables: { input: { prompts: ['long'], maxTokens: 1000 } } };
    const start = (client: Client): Promise<{ stop: () => void; first: Promise<Json> }> => {
      let resolve!: (r: Json) => void;
      const first = new Promise<Json>((r) => (resolve = r));
      const stop = client.subscribe(long, { next: (r) => resolve(r as Json), error: (e) => resolve({ errors: e as Json[] }), complete: () => resolve({ completed: true }) });
      return Promise.resolve({ stop, first });
    };
    const a = t.client(READER);
    const first = await start(a);
    expect((await first.first).data?.generate).toBeDefined();
    const sameConnection = await once(a, GENERATE, long.variables);
    expect(sameConnection.errors?.[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' }, message: expect.stringMatching(/^this connection expected at most 1 open subscriptions/) });
    const second = await start(t.client(READER));
    expect((await second.first).data?.generate).toBeDefined();
    const third = await once(t.client(READER), GENERATE, long.variables);
    expect(third.errors?.[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' }, message: expect.stringMatching(/^this token expected at most 2 open subscriptions/) });
    // Another token has its own share.
    const other = await start(t.client(ADMIN));
    expect((await other.first).data?.generate).toBeDefined();
    for (const s of [first, second, other]) s.stop();
    await until(() => t.serving.registry.counts().active === 0, 'the streams to end');
    const again = await once(t.client(READER), GENERATE, { input: { prompts: ['again'], maxTokens: 1 } });
    expect(again.data?.generate).toBeDefined();
  });
});

describe('rate per token', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ access: new AccessPolicy(TOKENS), apiLimits: { ratePerSecond: 0.01, rateBurst: 3 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses operations past the burst with 429 RATE_LIMITED and Retry-After, per token and on both transports', async () => {
    const query = { query: '{ health { phase } }' };
    for (let i = 0; i < 3; i++) expect((await post(t, query, bearer(READER))).status).toBe(200);
    const refused = await post(t, query, bearer(READER));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.json.errors[0]).toMatchObject({ extensions: { code: 'RATE_LIMITED' }, message: expect.stringMatching(/^this token expected at most 0\.01 operations per second \(bursts of 3\), but sent more\. Hint: retry after \d+ s\.$/) });
    // The same bucket over graphql-ws; the admin token has its own.
    expect((await once(t.client(READER), query.query)).errors?.[0].extensions.code).toBe('RATE_LIMITED');
    expect((await post(t, query, bearer(ADMIN))).status).toBe(200);
  });
});
