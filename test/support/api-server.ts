/**
 * A real API server on a loopback port (port 0) over a temporary checkpoints root, plus small clients:
 * POST /graphql through fetch, subscriptions through a real graphql-ws client on a real socket.
 */
import 'reflect-metadata';
import { createClient, type Client, type FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';

import { ApiServer, createMetrics, type AccessPolicy, type ApiLimits, type ApiMetrics, type Playground } from '../../src/api/http/index.ts';
import type { ConfigSource } from '../../src/api/schema/index.ts';
import { selectBackend } from '../../src/backend/select.ts';
import { Serving, type ServeLimits } from '../../src/serve/index.ts';
import { tinyRoot } from './tiny-checkpoint.ts';

export interface TestServer {
  readonly server: ApiServer;
  readonly serving: Serving;
  readonly metrics: ApiMetrics;
  readonly root: string;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** POST /graphql (with a bearer token when given); returns the parsed JSON body. */
  query<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, token?: string): Promise<FormattedExecutionResult<T>>;
  /** A fresh graphql-ws client (closed by close()), sending `token` in connectionParams when given. */
  client(token?: string): Client;
  close(): Promise<void>;
}

export const NO_CONFIGS: ConfigSource = { list: async () => [], get: async () => null };

export interface TestServerOptions {
  readonly ids?: readonly string[];
  /** The default checkpoint (needed when there are several ids). */
  readonly defaultId?: string;
  readonly limits?: Partial<ServeLimits>;
  readonly configs?: ConfigSource;
  readonly playground?: Playground | null;
  readonly access?: AccessPolicy;
  /** Merged over the test default, which lifts the rate limit (tests poll health in tight loops). */
  readonly apiLimits?: Partial<ApiLimits>;
  /** The tfjs backend for serving and in-process training (default cpu; wasm trains the GPT-2-vocabulary head faster). */
  readonly backend?: 'cpu' | 'wasm';
  /** More services for resolvers, made once the checkpoints root exists (a run queue writes its checkpoints there). */
  readonly extraContext?: (root: string) => Readonly<Record<string, unknown>>;
}

const TEST_API_LIMITS: Partial<ApiLimits> = { ratePerSecond: 100_000, rateBurst: 100_000 };

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const backend = options.backend ?? 'cpu';
  await selectBackend(backend);
  const { root, remove } = await tinyRoot(options.ids ?? ['tiny']);
  const metrics = createMetrics();
  const serving = await Serving.open({ checkpointsRoot: root, defaultCheckpoint: options.defaultId, limits: options.limits, observer: metrics.observer });
  await serving.loadDefault();
  const server = await ApiServer.create({
    serving,
    configs: options.configs ?? NO_CONFIGS,
    metrics,
    version: '0.0.0-test',
    backend: () => backend,
    backendDetail: () => (backend === 'wasm' ? 'WebAssembly kernels' : 'plain JavaScript kernels'),
    playground: options.playground ?? null,
    drainTimeoutMs: 2_000,
    access: options.access,
    limits: { ...TEST_API_LIMITS, ...options.apiLimits },
    extraContext: options.extraContext?.(root),
  });
  const httpUrl = await server.listen(0);
  const wsUrl = httpUrl.replace(/^http/, 'ws');
  const clients: Client[] = [];
  return {
    server,
    serving,
    metrics,
    root,
    httpUrl,
    wsUrl,
    async query(query, variables, token) {
      const res = await fetch(httpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    client(token) {
      const connectionParams = token ? { authorization: `Bearer ${token}` } : undefined;
      const c = createClient({ url: wsUrl, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, connectionParams });
      clients.push(c);
      return c;
    },
    async close() {
      await Promise.all(clients.map((c) => c.dispose()));
      if (server.state.phase !== 'stopped') await server.drain();
      await remove();
    },
  };
}

export const GENERATE = `subscription Generate($input: GenerateInput!) {
  generate(input: $input) {
    __typename
    ... on TokenEvent { promptIndex tokenId text position logprob }
    ... on FinishEvent { promptIndex finishReason generatedTokens seed }
    ... on ErrorEvent { promptIndex code message }
  }
}`;

export type EventJson = Record<string, unknown> & { __typename: string };

/** Every result of one subscription until it completes. */
export async function subscribeAll(client: Client, input: Record<string, unknown>): Promise<FormattedExecutionResult<{ generate: EventJson }, unknown>[]> {
  const results: FormattedExecutionResult<{ generate: EventJson }, unknown>[] = [];
  for await (const r of client.iterate<{ generate: EventJson }>({ query: GENERATE, variables: { input } })) results.push(r);
  return results;
}

export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
