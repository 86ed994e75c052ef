import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GENERATE, startTestServer, subscribeAll, until, type EventJson, type TestServer } from '../../support/api-server.ts';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ limits: { maxActive: 16, maxQueued: 16 } });
});

afterAll(async () => {
  await t?.close();
});

const activeSequences = async (): Promise<number> =>
  ((await t.query<{ health: { activeSequences: number } }>('{ health { activeSequences } }')).data as { health: { activeSequences: number } }).health
    .activeSequences;

const tokensOf = (events: EventJson[]) => events.filter((e) => e.__typename === 'TokenEvent');

describe('generate over graphql-ws', () => {
  it('delivers tokens one by one while the sequence is still generating, and unsubscribing frees its row', async () => {
    const client = t.client();
    const received: EventJson[] = [];
    let activeAtFirstToken = -1;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const unsubscribe = client.subscribe<{ generate: EventJson }>(
      { query: GENERATE, variables: { input: { prompts: ['Once upon a time'], maxTokens: 1000, seed: 1 } } },
      {
        next: (r) => {
          received.push(r.data!.generate);
          if (received.length === 1) {
            // A second client asks the server while the first token is in hand: the sequence is still running.
            void activeSequences().then((n) => {
              activeAtFirstToken = n;
              unsubscribe();
              finish();
            });
          }
        },
        error: (e) => {
          throw e;
        },
        complete: () => finish(),
      },
    );
    await done;
    expect(received[0]).toMatchObject({ __typename: 'TokenEvent', promptIndex: 0 });
    expect(activeAtFirstToken).toBe(1);
    expect(received.length).toBeLessThan(1000);
    await until(async () => (await activeSequences()) === 0, 'the cancelled sequence to leave the batch');
  });

  it('cancels a stream when its client closes the socket', async () => {
    const client = t.client();
    let firstToken!: () => void;
    const started = new Promise<void>((r) => (firstToken = r));
    client.subscribe(
      { query: GENERATE, variables: { input: { prompts: ['closing'], maxTokens: 1000 } } },
      { next: () => firstToken(), error: () => {}, complete: () => {} },
    );
    await started;
    expect(await activeSequences()).toBe(1);
    await client.dispose();
    await until(async () => (await activeSequences()) === 0, 'the closed client’s sequence to leave the batch');
  });

  it('gives eight concurrent clients exactly what each prompt gets alone with the same seed', async () => {
    const inputs = Array.from({ length: 8 }, (_, i) => ({
      prompts: [['Hello', 'The cat sat on', 'A', 'In 1999 the', 'Once upon a time there was', 'x', 'Dear diary,', 'GraphQL'][i]],
      maxTokens: 6 + 3 * i,
      temperature: 0.8,
      topK: 50,
      seed: 1000 + i,
    }));
    const stepsBefore = t.serving.registry.list()[0].stepsRun;
    const together = await Promise.all(inputs.map((input) => subscribeAll(t.client(), input)));
    // They shared batched steps: run one after another they would need sum(maxTokens - 1) = 124 steps.
    expect(t.serving.registry.list()[0].stepsRun - stepsBefore).toBeLessThan(124);
    const alone: typeof together = [];
    for (const input of inputs) alone.push(await subscribeAll(t.client(), input));
    together.forEach((results, i) => {
      const events = results.map((r) => r.data!.generate);
      expect(events, `client ${i}`).toEqual(alone[i].map((r) => r.data!.generate));
      expect(tokensOf(events)).toHaveLength(inputs[i].maxTokens);
      expect(events.at(-1)).toMatchObject({ __typename: 'FinishEvent', finishReason: 'LENGTH', seed: 1000 + i });
    });
  });

  it('streams every prompt of a multi-prompt request and completes after the last one finishes', async () => {
    const results = await subscribeAll(t.client(), { prompts: ['one', 'two two', 'three three three'], maxTokens: 4, seed: 5 });
    const events = results.map((r) => r.data!.generate);
    expect(results.every((r) => r.errors === undefined)).toBe(true);
    const finishes = events.filter((e) => e.__typename === 'FinishEvent');
    expect(finishes.map((f) => f.promptIndex).sort()).toEqual([0, 1, 2]);
    expect(events.at(-1)?.__typename).toBe('FinishEvent');
    for (const i of [0, 1, 2]) expect(tokensOf(events).filter((e) => e.promptIndex === i)).toHaveLength(4);
  });
});

describe('capacity', () => {
  it('refuses at once with CAPACITY when full, and serves again once a subscriber cancels', async () => {
    const small = await startTestServer({ limits: { maxActive: 1, maxQueued: 0 } });
    try {
      const first = small.client();
      let firstToken!: () => void;
      const started = new Promise<void>((r) => (firstToken = r));
      const stop = first.subscribe(
        { query: GENERATE, variables: { input: { prompts: ['long'], maxTokens: 1000 } } },
        { next: () => firstToken(), error: () => {}, complete: () => {} },
      );
      await started;
      const refused = await subscribeAll(small.client(), { prompts: ['second'], maxTokens: 2 });
      expect(refused).toHaveLength(1);
      expect(refused[0].errors?.[0]).toMatchObject({ extensions: { code: 'CAPACITY' } });
      expect(refused[0].errors?.[0].message).toMatch(/expected room for 1 more sequences, but 1 of 1 places/);
      stop();
      await until(() => small.serving.registry.counts().active === 0, 'the row to be freed');
      const served = await subscribeAll(small.client(), { prompts: ['second'], maxTokens: 2 });
      expect(served.at(-1)?.data?.generate).toMatchObject({ finishReason: 'LENGTH', generatedTokens: 2 });
    } finally {
      await small.close();
    }
  });
});

describe('draining', () => {
  it('ends open streams with CANCELLED, refuses new work, then stops', async () => {
    const d = await startTestServer();
    const client = d.client();
    const events: EventJson[] = [];
    let completed!: () => void;
    const complete = new Promise<void>((r) => (completed = r));
    let firstToken!: () => void;
    const started = new Promise<void>((r) => (firstToken = r));
    client.subscribe<{ generate: EventJson }>(
      { query: GENERATE, variables: { input: { prompts: ['drain me'], maxTokens: 1000 } } },
      { next: (r) => (events.push(r.data!.generate), firstToken()), error: () => completed(), complete: () => completed() },
    );
    await started;
    const draining = d.server.drain();
    expect(d.server.state.phase).toBe('draining');
    const refused = await fetch(d.httpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ health { phase } }"}' }).catch(() => null);
    expect(refused === null || refused.status === 503).toBe(true);
    await complete;
    await draining;
    expect(events.at(-1)).toMatchObject({ __typename: 'FinishEvent', finishReason: 'CANCELLED' });
    expect(d.server.state.phase).toBe('stopped');
    await d.close();
  });
});

describe('probes and metrics', () => {
  it('answers /healthz, /readyz once a model has stepped, and 404 elsewhere', async () => {
    const base = t.httpUrl.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, (await ready.text()).trim()]).toEqual([200, 'ready']);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('exposes requests, failures by code, sequences, latencies and tokens on /metrics', async () => {
    await subscribeAll(t.client(), { prompts: ['metrics'], maxTokens: 3 });
    await subscribeAll(t.client(), { prompts: [''] });
    const text = await (await fetch(t.httpUrl.replace(/\/graphql$/, '/metrics'))).text();
    expect(text).toMatch(/^xlstm_graphql_requests_total\{transport="ws",operation="subscription"\} [1-9]/m);
    expect(text).toMatch(/^xlstm_failures_total\{code="BAD_USER_INPUT"\} [1-9]/m);
    expect(text).toMatch(/^xlstm_active_sequences 0$/m);
    expect(text).toMatch(/^xlstm_queued_sequences 0$/m);
    expect(text).toMatch(/^xlstm_time_to_first_token_seconds_count [1-9]/m);
    expect(text).toMatch(/^xlstm_inter_token_latency_seconds_count [1-9]/m);
    const tokens = Number(/^xlstm_tokens_generated_total (\d+)/m.exec(text)?.[1]);
    expect(tokens).toBeGreaterThanOrEqual(3);
  });
});
