/**
 * `npm run soak [-- --seconds N] [--url URL --token T]`: holds a server under load for a bounded time and checks
 * that it stays whole. 64 lanes each run generate subscriptions back to back over graphql-ws, cancelling some
 * part-way, dropping their connection now and then and reconnecting; queries run alongside over HTTP, and a
 * fine-tune when the server has the runs API. Reports completed streams, errors by code, p50/p99 latencies, and
 * RSS and tfjs memory (from /metrics) at the start and the end. Passes when no unexpected error came, every stream
 * not cancelled by the client ended each prompt with a finish reason, nothing stayed queued or active, and memory
 * is flat within 5%. Without --url it starts `xlstm serve` itself (the default checkpoint, a fresh admin token).
 * Writes bench/results/soak.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

import { Rng } from '../src/util/rng.ts';
import { machine } from './lib/machine.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    lanes: { type: 'string', default: '64' },
    url: { type: 'string' },
    token: { type: 'string' },
    'checkpoints-dir': { type: 'string' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'bench/results/soak.json' },
  },
});
const SECONDS = Number(values.seconds);
const LANES = Number(values.lanes);
const WARMUP_SECONDS = Math.min(20, Math.max(5, SECONDS * 0.1));
const BIN = new URL('../bin/xlstm.js', import.meta.url).pathname;
const PROMPTS = ['Once upon a time', 'The old man looked at the sea and', 'Call me Ishmael.', 'It was a dark and stormy night;', 'Whale', 'The ship sailed'];

const GENERATE = `subscription G($input: GenerateInput!) { generate(input: $input) {
  __typename ... on TokenEvent { promptIndex } ... on FinishEvent { promptIndex finishReason } ... on ErrorEvent { code message } } }`;

// ---------------------------------------------------------------- measurements

const latencies = { ttft: [] as number[], interToken: [] as number[], query: [] as number[] };
const errors = new Map<string, number>();
const errorSamples: string[] = [];
const streams = { started: 0, completed: 0, cancelled: 0, dropped: 0, refused: 0, unfinished: 0, tokens: 0, reconnections: 0 };
const finishReasons = new Map<string, number>();
const queries = { ok: 0, failed: 0 };
/** Codes the soak provokes on purpose: a dropped connection is not the server's error. */
const EXPECTED = new Set<string>();

function countError(code: string, message: string): void {
  errors.set(code, (errors.get(code) ?? 0) + 1);
  if (errorSamples.length < 10) errorSamples.push(`${code}: ${message.slice(0, 200)}`);
}

function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] * 10) / 10;
}

// ---------------------------------------------------------------- the server

interface Target {
  readonly url: string;
  readonly token: string | null;
  readonly stop: () => Promise<void>;
}

async function startServer(): Promise<Target> {
  const token = randomBytes(24).toString('hex');
  const args = [BIN, 'serve', '--port', '0', '--no-playground', '--max-active', '64', '--max-queued', '256'];
  if (values['checkpoints-dir']) args.push('--checkpoints-dir', values['checkpoints-dir']);
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      XLSTM_API_TOKENS: `${token}:admin`,
      // The soak is one token with 64 lanes: room for all of them, and for reconnections.
      XLSTM_RATE_PER_SECOND: '2000',
      XLSTM_RATE_BURST: '4000',
      XLSTM_MAX_SUBSCRIPTIONS_PER_TOKEN: String(4 * LANES),
    },
  });
  const log: string[] = [];
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      log.push(line);
      const found = /at (http:\/\/\S+\/graphql)/.exec(line)?.[1];
      if (found) resolve(found);
    });
    void exited.then(() => reject(new Error(`xlstm serve exited early:\n${log.join('\n')}`)));
  });
  return {
    url,
    token,
    stop: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) console.error(`xlstm serve exited with ${code}:\n${log.slice(-20).join('\n')}`);
    },
  };
}

async function post(target: Target, query: string, variables: Record<string, unknown> = {}): Promise<{ data?: any; errors?: { message: string; extensions?: { code?: string } }[] }> {
  const res = await fetch(target.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(target.token ? { authorization: `Bearer ${target.token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] };
}

interface MemoryReading {
  readonly rssBytes: number;
  readonly tfTensors: number | null;
  readonly tfBytes: number | null;
  readonly active: number;
  readonly queued: number;
}

async function memory(target: Target): Promise<MemoryReading> {
  const text = await (await fetch(target.url.replace(/\/graphql$/, '/metrics'))).text();
  const read = (name: string): number | null => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return {
    rssBytes: read('xlstm_process_resident_memory_bytes') ?? Number.NaN,
    tfTensors: read('xlstm_tf_tensors'),
    tfBytes: read('xlstm_tf_bytes'),
    active: read('xlstm_active_sequences') ?? 0,
    queued: read('xlstm_queued_sequences') ?? 0,
  };
}

async function idle(target: Target, timeoutMs = 60_000): Promise<MemoryReading> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await memory(target);
    if ((m.active === 0 && m.queued === 0) || Date.now() > deadline) return m;
    await new Promise((r) => setTimeout(r, 200));
  }
}

// ---------------------------------------------------------------- load

function newClient(target: Target): Client {
  return createClient({
    url: target.url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: target.token ? { authorization: `Bearer ${target.token}` } : undefined,
  });
}

type StreamEnd = 'completed' | 'cancelled' | 'dropped' | 'refused' | 'unfinished';

/** One generate subscription; the lane decides whether to cancel it part-way or drop the whole connection. */
function runStream(client: Client, rng: Rng, measure: boolean): Promise<StreamEnd> {
  const prompts = Array.from({ length: 1 + (rng.uniform() < 0.2 ? 1 : 0) }, () => PROMPTS[rng.int(PROMPTS.length)]);
  const maxTokens = 8 + rng.int(40);
  const action = rng.uniform();
  const cancelAfter = action < 0.2 ? 1 + rng.int(maxTokens - 1) : -1;
  const dropAfter = action >= 0.2 && action < 0.27 ? 1 + rng.int(maxTokens - 1) : -1;
  const input = { prompts, maxTokens, temperature: 0.8, topK: 50, seed: rng.int(1_000_000) };
  if (measure) streams.started++;
  const started = performance.now();
  let last = started;
  let tokens = 0;
  const finished = new Set<number>();
  return new Promise<StreamEnd>((resolve) => {
    let settled = false;
    const settle = (kind: StreamEnd): void => {
      if (settled) return;
      settled = true;
      if (measure) {
        streams[kind]++;
        streams.tokens += tokens;
      }
      resolve(kind);
    };
    const stop = client.subscribe<{ generate: { __typename: string; promptIndex?: number; finishReason?: string; code?: string; message?: string } }>(
      { query: GENERATE, variables: { input } },
      {
        next: (r) => {
          if (r.errors?.length) {
            for (const e of r.errors) if (measure) countError(String(e.extensions?.code), e.message);
            return settle('refused');
          }
          const e = r.data!.generate;
          const now = performance.now();
          if (e.__typename === 'TokenEvent') {
            if (measure) (tokens === 0 ? latencies.ttft : latencies.interToken).push(now - (tokens === 0 ? started : last));
            last = now;
            tokens++;
            if (tokens === cancelAfter) {
              stop();
              settle('cancelled');
            } else if (tokens === dropAfter) {
              // The connection goes away under the server's feet (the next stream of this lane reconnects).
              void client.terminate();
              settle('dropped');
            }
          } else if (e.__typename === 'FinishEvent') {
            finished.add(e.promptIndex!);
            if (measure) finishReasons.set(e.finishReason!, (finishReasons.get(e.finishReason!) ?? 0) + 1);
          } else if (e.__typename === 'ErrorEvent' && measure) {
            countError(String(e.code), String(e.message));
          }
        },
        error: (err) => {
          if (settled) return;
          if (measure) {
            if (Array.isArray(err)) for (const e of err as { message: string; extensions?: { code?: string } }[]) countError(String(e.extensions?.code), e.message);
            else countError(`CLOSED_${(err as { code?: number }).code ?? 'unknown'}`, String((err as { reason?: string }).reason ?? err));
          }
          settle('refused');
        },
        complete: () => settle(finished.size === prompts.length ? 'completed' : 'unfinished'),
      },
    );
  });
}

async function lane(target: Target, seed: number, until: () => boolean, measure: () => boolean): Promise<void> {
  const rng = new Rng(seed);
  let client = newClient(target);
  while (!until()) {
    const measuring = measure();
    const end = await runStream(client, rng, measuring);
    // A dropped connection, or now and then by choice: a fresh connection for the next stream.
    if (end === 'dropped' || rng.uniform() < 0.1) {
      await client.dispose();
      client = newClient(target);
      if (measuring) streams.reconnections++;
    }
  }
  await client.dispose();
}

async function queryLoop(target: Target, until: () => boolean, measure: () => boolean): Promise<void> {
  const operations = ['{ health { phase activeSequences queuedSequences } }', '{ models { checkpoint phase activeSequences stepsRun } }', '{ checkpoints(first: 5) { items { id step } totalCount } }'];
  let i = 0;
  while (!until()) {
    const started = performance.now();
    try {
      const r = await post(target, operations[i++ % operations.length]);
      if (measure()) {
        latencies.query.push(performance.now() - started);
        if (r.errors?.length) {
          queries.failed++;
          for (const e of r.errors) countError(String(e.extensions?.code), e.message);
        } else queries.ok++;
      }
    } catch (e) {
      if (measure()) countError('HTTP_FAILED', String(e));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A fine-tune alongside the load, where the server has the runs API; otherwise why it was skipped. */
/** A fine-tune beside the load, cancelled once `until()` holds and it has run at least `minSteps` steps. */
async function fineTune(target: Target, until: () => boolean, minSteps = 0): Promise<Record<string, unknown>> {
  const health = await post(target, '{ checkpoints(first: 50) { items { id isDefault } } }');
  const base = (health.data?.checkpoints?.items as { id: string; isDefault: boolean }[] | undefined)?.find((c) => c.isDefault)?.id;
  const dir = mkdtempSync(path.join(tmpdir(), 'xlstm-soak-data-'));
  const dataset = path.join(dir, 'story.txt');
  writeFileSync(dataset, `${PROMPTS.join(' ')} `.repeat(200));
  try {
    const started = await post(target, 'mutation F($input: StartFineTuneInput!) { startFineTune(input: $input) { id phase } }', {
      input: { checkpoint: base ?? 'missing', dataset, steps: 100_000, batchSize: 2, maxLength: 32, valCheckInterval: 100_000 },
    });
    if (started.errors?.length) return { ran: false, reason: `${started.errors[0].extensions?.code}: ${started.errors[0].message}` };
    const id = started.data.startFineTune.id as string;
    const stepOf = async (): Promise<number> =>
      ((await post(target, 'query R($id: ID!) { run(id: $id) { step } }', { id })).data?.run?.step as number | undefined) ?? 0;
    while (!until() || (minSteps > 0 && (await stepOf()) < minSteps)) await new Promise((r) => setTimeout(r, 500));
    const cancelled = await post(target, 'mutation C($id: ID!) { cancelRun(id: $id) { phase step } }', { id });
    for (let i = 0; i < 120; i++) {
      const r = await post(target, 'query R($id: ID!) { run(id: $id) { phase step } }', { id });
      const phase = r.data?.run?.phase as string | undefined;
      if (phase && !['RUNNING', 'CANCELLING', 'QUEUED'].includes(phase)) return { ran: true, id, phase, steps: r.data.run.step };
      await new Promise((res) => setTimeout(res, 500));
    }
    return { ran: true, id, phase: 'did not stop', cancel: cancelled };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the run

async function main(): Promise<void> {
  const target: Target = values.url
    ? { url: values.url, token: values.token ?? process.env.XLSTM_SOAK_TOKEN ?? null, stop: async () => {} }
    : await startServer();
  console.log(`soak: ${LANES} lanes for ${SECONDS} s against ${target.url} (warm-up ${WARMUP_SECONDS} s)`);
  const seed = Number(values.seed);
  try {
    // Warm-up: the same load, not measured, then a drain, so that the start reading is of a server that has
    // served, a fine-tune included: a training run's first steps grow the wasm heap, which never shrinks, to
    // its working size. What the reading after it can show is growth that repeats, i.e. a leak.
    const warmEnd = Date.now() + WARMUP_SECONDS * 1000;
    await Promise.all([
      Promise.all(Array.from({ length: LANES }, (_, i) => lane(target, seed * 1000 + i, () => Date.now() > warmEnd, () => false))),
      fineTune(target, () => Date.now() > warmEnd, 2),
    ]);
    const start = await idle(target);
    console.log(`start: rss ${(start.rssBytes / 2 ** 20).toFixed(1)} MiB, tf ${start.tfTensors} tensors / ${start.tfBytes} bytes`);

    const t0 = Date.now();
    const end = t0 + SECONDS * 1000;
    const done = (): boolean => Date.now() > end;
    const rssSeries: number[] = [];
    const sampler = setInterval(() => {
      void memory(target).then((m) => rssSeries.push(m.rssBytes)).catch(() => {});
    }, 5000);
    const [, , ft] = await Promise.all([
      Promise.all(Array.from({ length: LANES }, (_, i) => lane(target, seed * 1000 + LANES + i, done, () => true))),
      queryLoop(target, done, () => true),
      fineTune(target, done),
    ]);
    clearInterval(sampler);
    const wall = (Date.now() - t0) / 1000;
    const finish = await idle(target);
    console.log(`end:   rss ${(finish.rssBytes / 2 ** 20).toFixed(1)} MiB, tf ${finish.tfTensors} tensors / ${finish.tfBytes} bytes`);

    const rssDrift = (finish.rssBytes - start.rssBytes) / start.rssBytes;
    const tfDrift = start.tfBytes && finish.tfBytes !== null ? (finish.tfBytes - start.tfBytes) / start.tfBytes : 0;
    const unexpected = [...errors].filter(([code]) => !EXPECTED.has(code));
    const checks = {
      noUnexpectedErrors: unexpected.length === 0,
      everyStreamFinished: streams.unfinished === 0,
      drained: finish.active === 0 && finish.queued === 0,
      rssFlatWithin5Percent: Math.abs(rssDrift) <= 0.05,
      tfMemoryFlatWithin5Percent: Math.abs(tfDrift) <= 0.05,
    };
    const pass = Object.values(checks).every(Boolean);
    const report = {
      pass,
      checks,
      seconds: SECONDS,
      wallSeconds: wall,
      lanes: LANES,
      streams: { ...streams, tokensPerSecond: Math.round(streams.tokens / wall) },
      finishReasons: Object.fromEntries(finishReasons),
      errorsByCode: Object.fromEntries(errors),
      errorSamples,
      queries: { ...queries, perSecond: Math.round(((queries.ok + queries.failed) / wall) * 10) / 10 },
      latencyMs: {
        timeToFirstToken: { p50: percentile(latencies.ttft, 50), p99: percentile(latencies.ttft, 99) },
        interToken: { p50: percentile(latencies.interToken, 50), p99: percentile(latencies.interToken, 99) },
        query: { p50: percentile(latencies.query, 50), p99: percentile(latencies.query, 99) },
      },
      memory: {
        start,
        end: finish,
        rssDrift: Math.round(rssDrift * 10_000) / 100,
        tfBytesDrift: Math.round(tfDrift * 10_000) / 100,
        rssSeriesMiB: rssSeries.map((b) => Math.round((b / 2 ** 20) * 10) / 10),
      },
      fineTune: ft,
      machine: machine(),
    };
    console.log(JSON.stringify(report, null, 2));
    mkdirSync(path.dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`soak ${pass ? 'PASSED' : 'FAILED'}; figures in ${values.out}`);
    if (!pass) process.exitCode = 1;
  } finally {
    await target.stop();
  }
}

await main();
