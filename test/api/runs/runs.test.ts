import 'reflect-metadata';
import { createClient, type Client } from 'graphql-ws';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import { attachSubscriptions, type SubscriptionServer } from '../../../src/api/http/subscriptions.ts';
import { buildApiSchema, createErrorFormatter, type ApiContext } from '../../../src/api/schema/index.ts';
import type { RunsContext } from '../../../src/api/schema/runs/run.resolver.ts';
import { selectBackend } from '../../../src/backend/select.ts';
import { createRunQueue } from '../../../src/cli/runs.ts';
import { Serving } from '../../../src/serve/index.ts';
import { openStore, type Store } from '../../../src/store/index.ts';
import type { RunQueue } from '../../../src/train/index.ts';
import { NO_CONFIGS } from '../../support/api-server.ts';
import { tinyRoot } from '../../support/tiny-checkpoint.ts';

type Json = Record<string, any>;

const PROGRESS = `subscription P($id: ID!) {
  runProgress(id: $id) { runId kind phase step maxSteps loss lr gradNorm tokensPerSecond valLoss samples checkpointId checkpointReason error { code message } }
}`;
const START_FINE_TUNE = `mutation F($input: StartFineTuneInput!) { startFineTune(input: $input) { id kind phase baseCheckpoint maxSteps } }`;

/**
 * The GraphQL schema over a real graphql-ws socket on a loopback port, with the run queue in the
 * context. (The HTTP server of src/api/http does not take a run queue yet; this uses its WebSocket
 * transport directly.)
 */
describe('runs over graphql-ws', () => {
  let http: Server;
  let ws: SubscriptionServer;
  let serving: Serving;
  let store: Store;
  let queue: RunQueue;
  let client: Client;
  let dataset: string;
  let removeRoot: () => Promise<void>;
  let home: string;

  beforeAll(async () => {
    // wasm: a GPT-2-vocabulary head trains several times faster there than on the cpu backend.
    await selectBackend('wasm');
    const { root, remove } = await tinyRoot(['tiny']);
    removeRoot = remove;
    serving = await Serving.open({ checkpointsRoot: root });
    home = mkdtempSync(path.join(tmpdir(), 'xlstm-api-runs-'));
    dataset = path.join(home, 'story.txt');
    writeFileSync(
      dataset,
      'Once upon a time there was a little fox who lived in a quiet wood. Every morning the fox ran to the river to drink, ' +
        'and every evening it came back to sleep under the old oak tree. One day the fox met a rabbit who was lost. '.repeat(4),
    );
    store = openStore(home);
    queue = createRunQueue({ store, checkpointsRoot: root, configDir: path.join(home, 'config'), workDir: home, backend: 'wasm' });
    const schema = await buildApiSchema();
    http = createServer((_req, res) => res.writeHead(404).end());
    const context = (): ApiContext & RunsContext => ({
      serving,
      configs: NO_CONFIGS,
      server: { version: 'test', backend: () => 'wasm', backendDetail: () => '', uptimeSeconds: () => 0, phase: () => 'serving' },
      runs: queue,
    });
    // Under vitest, src/ gets graphql's ESM build while graphql-ws executes with its CommonJS one, so
    // the formatter's `instanceof GraphQLError` misses the executor's wrapper; unwrap it by shape here.
    const formatter = createErrorFormatter({ log: () => {} });
    const unwrap = (e: unknown): unknown => {
      let cause = e as { name?: string; originalError?: unknown } | undefined;
      while (cause?.name === 'GraphQLError' && cause.originalError) cause = cause.originalError as typeof cause;
      return cause;
    };
    ws = attachSubscriptions(http, { schema, context, format: (f, e) => formatter(f, unwrap(e)), refuse: () => null, onOperation: () => {} });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    client = createClient({ url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
  });

  afterAll(async () => {
    await client?.dispose();
    await queue?.close();
    await ws?.close();
    await new Promise<void>((resolve) => http?.close(() => resolve()));
    await serving?.close();
    store?.close();
    await removeRoot?.();
    rmSync(home, { recursive: true, force: true });
  });

  /** A query or mutation over the socket: its one result. */
  async function execute(query: string, variables: Json = {}): Promise<{ data?: Json | null; errors?: readonly Json[] }> {
    for await (const result of client.iterate({ query, variables })) return result as { data?: Json | null; errors?: readonly Json[] };
    throw new Error('no result');
  }

  async function subscribeAll(query: string, variables: Json, onEvent: (e: Json) => void = () => {}): Promise<Json[]> {
    const events: Json[] = [];
    for await (const result of client.iterate({ query, variables })) {
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      const event = Object.values(result.data as Json)[0] as Json;
      events.push(event);
      onEvent(event);
    }
    return events;
  }

  it("should stream a fine-tune's progress, end SUCCEEDED, and serve its checkpoint through loadModel and generate", async () => {
    const started = await execute(START_FINE_TUNE, { input: { checkpoint: 'tiny', dataset, steps: 3, batchSize: 2, maxLength: 16, valCheckInterval: 3, learningRate: 0.001, overrides: ['inference.token_lim=4'] } });
    expect(started.errors).toBeUndefined();
    const run = started.data!.startFineTune;
    expect(run).toMatchObject({ kind: 'FINETUNE', phase: 'QUEUED', baseCheckpoint: 'tiny', maxSteps: 3 });

    // Subscribed while QUEUED, so every event of the run is seen; then the queue starts.
    const streaming = subscribeAll(PROGRESS, { id: run.id });
    await new Promise((r) => setTimeout(r, 200));
    queue.start();
    const events = await streaming;

    expect(events[0]).toMatchObject({ kind: 'PHASE', phase: 'QUEUED', runId: run.id });
    expect(events.filter((e) => e.kind === 'PHASE').map((e) => e.phase)).toEqual(['QUEUED', 'RUNNING', 'SUCCEEDED']);
    expect(events.find((e) => e.kind === 'START')).toMatchObject({ step: 0, maxSteps: 3 });
    const steps = events.filter((e) => e.kind === 'STEP');
    expect(steps.map((e) => e.step)).toEqual([1, 2, 3]);
    for (const s of steps) expect(Number.isFinite(s.loss) && s.lr > 0 && s.gradNorm > 0 && s.tokensPerSecond > 0).toBe(true);
    const evals = events.filter((e) => e.kind === 'EVAL');
    expect(evals.map((e) => e.step)).toEqual([0, 3]);
    expect(evals[1].samples).toHaveLength(2);
    const lastId = `${run.id}-last`;
    expect(events.filter((e) => e.kind === 'CHECKPOINT').map((e) => e.checkpointId)).toContain(lastId);

    const detail = await execute(`query R($id: ID!) { run(id: $id) { phase step metrics { step loss valLoss samples } checkpoints } }`, { id: run.id });
    expect(detail.data!.run).toMatchObject({ phase: 'SUCCEEDED', step: 3 });
    // Steps are recorded every log_every_n_steps (default 10), at step 1 and at the end; evaluations always.
    expect(detail.data!.run.metrics.map((m: Json) => m.step)).toEqual([0, 1, 3]);
    expect(detail.data!.run.checkpoints).toContain(lastId);

    const listed = await execute(`{ checkpoints(first: 50) { items { id parent runId step } } }`);
    expect(listed.data!.checkpoints.items).toContainEqual({ id: lastId, parent: 'tiny', runId: run.id, step: 3 });
    const loaded = await execute(`mutation L($c: ID!) { loadModel(checkpoint: $c) { checkpoint } }`, { c: lastId });
    expect(loaded.errors).toBeUndefined();
    const tokens = await subscribeAll(
      `subscription G($input: GenerateInput!) { generate(input: $input) { __typename ... on TokenEvent { tokenId } ... on FinishEvent { finishReason generatedTokens } } }`,
      { input: { prompts: ['Once upon a time'], checkpoint: lastId, maxTokens: 3, temperature: 0 } },
    );
    expect(tokens.at(-1)).toMatchObject({ __typename: 'FinishEvent' });
    expect(tokens.filter((t) => t.__typename === 'TokenEvent').length).toBe(tokens.at(-1)!.generatedTokens);
  });

  it('should cancel a running fine-tune with cancelRun: CANCELLING, then CANCELLED after the current step', async () => {
    const started = await execute(START_FINE_TUNE, { input: { checkpoint: 'tiny', dataset, steps: 500, batchSize: 2, maxLength: 16, valCheckInterval: 500, overrides: ['inference.token_lim=4'] } });
    const id = started.data!.startFineTune.id;
    let cancel: Promise<unknown> | null = null;
    const events = await subscribeAll(PROGRESS, { id }, (e) => {
      if (e.kind === 'STEP' && !cancel) cancel = execute(`mutation C($id: ID!) { cancelRun(id: $id) { phase } }`, { id });
    });
    expect(((await (cancel as unknown as Promise<Json>)) as Json).data.cancelRun.phase).toBe('CANCELLING');
    const phases = events.filter((e) => e.kind === 'PHASE').map((e) => e.phase);
    expect(phases.slice(-2)).toEqual(['CANCELLING', 'CANCELLED']);
    expect(Math.max(...events.filter((e) => e.kind === 'STEP').map((e) => e.step))).toBeLessThan(500);
    const runs = await execute(`{ runs(phase: CANCELLED) { items { id } } }`);
    expect(runs.data!.runs.items.map((r: Json) => r.id)).toContain(id);
  });

  it.each([
    ['an unknown checkpoint', START_FINE_TUNE, () => ({ input: { checkpoint: 'no-such-checkpoint', dataset } }), 'BAD_USER_INPUT', /checkpoint expected the id of a checkpoint/],
    ['a missing dataset', START_FINE_TUNE, () => ({ input: { checkpoint: 'tiny', dataset: path.join(path.dirname(dataset), 'absent.txt') } }), 'BAD_USER_INPUT', /absent.txt expected to exist/],
    ['devices 0', START_FINE_TUNE, () => ({ input: { checkpoint: 'tiny', dataset, devices: 0 } }), 'BAD_USER_INPUT', /input.devices expected an integer from 1 to 64, but got 0/],
    ['a negative learning rate', START_FINE_TUNE, () => ({ input: { checkpoint: 'tiny', dataset, learningRate: -0.1 } }), 'BAD_USER_INPUT', /input.learningRate expected a number > 0, but got -0.1/],
    [
      'an unknown config key',
      `mutation T($input: StartTrainingInput!) { startTraining(input: $input) { id } }`,
      () => ({ input: { overrides: ['trainer.max_step=3'] } }),
      'INVALID_CONFIG',
      /unknown key "max_step".*did you mean "max_steps"/,
    ],
  ])('should refuse %s at once and start nothing', async (_label, mutation, variables, code, message) => {
    const before = store.runs.list({ first: 100 }).items.length;
    const result = await execute(mutation, variables());
    expect(result.data).toBeNull();
    expect(result.errors![0].extensions.code).toBe(code);
    expect(result.errors![0].message).toMatch(message);
    expect(store.runs.list({ first: 100 }).items.length).toBe(before);
  });
});
