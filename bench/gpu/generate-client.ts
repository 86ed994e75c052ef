/**
 * GraphQL generate runs against a running `xlstm serve` (the GPU campaign's serve stage, or any local server):
 * the health query over HTTP, then generate subscriptions over graphql-ws (one request per batch size, then
 * several concurrent clients, then the clients again sampling with temperature 1, top-k 50, top-p 0.95 unless
 * --sampled 0), recording time to first token, tokens/s and whether every prompt finished.
 * Prints a summary, writes JSON (--out), and exits 1 when any stream failed, timed out or missed a FinishEvent.
 *   node --import tsx bench/gpu/generate-client.ts --url http://127.0.0.1:4000/graphql [--max-tokens 64]
 *     [--batches 1,64] [--clients 8 --client-prompts 8] [--temperature 0] [--seed 7] [--timeout 120] [--out F]
 * Every flag also reads GEN_<FLAG> (GEN_MAX_TOKENS, ...), so a shell stage can set them without quoting.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

const FLAGS = {
  url: 'http://127.0.0.1:4000/graphql',
  'max-tokens': '64',
  batches: '1,64',
  clients: '8',
  'client-prompts': '8',
  temperature: '0',
  sampled: '1',
  seed: '7',
  timeout: '120',
  'warmup-tokens': '4',
  token: '',
  out: '',
} as const;
type Flag = keyof typeof FLAGS;

const { values } = parseArgs({ options: Object.fromEntries(Object.keys(FLAGS).map((k) => [k, { type: 'string' }])) as Record<Flag, { type: 'string' }> });
const flag = (name: Flag): string => values[name] ?? process.env[`GEN_${name.toUpperCase().replace(/-/g, '_')}`] ?? FLAGS[name];
function count(name: Flag, min: number): number {
  const n = Number(flag(name));
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} expected an integer >= ${min}, but got ${JSON.stringify(flag(name))}.`);
  return n;
}

const HTTP_URL = flag('url');
const WS_URL = HTTP_URL.replace(/^http/, 'ws');
const MAX_TOKENS = count('max-tokens', 1);
const BATCHES = flag('batches').split(',').filter(Boolean).map(Number);
const CLIENTS = count('clients', 0);
const CLIENT_PROMPTS = count('client-prompts', 1);
const TEMPERATURE = Number(flag('temperature'));
const SAMPLED = flag('sampled') !== '0';
interface Sampling {
  readonly temperature: number;
  readonly topK?: number;
  readonly topP?: number;
}
const AS_ASKED: Sampling = { temperature: TEMPERATURE };
/** Tokens drawn on the device by every rule at once (on webgpu the server samples in one kernel per batch). */
const DRAWN: Sampling = { temperature: 1, topK: 50, topP: 0.95 };
const SEED = count('seed', 0);
const TIMEOUT_MS = count('timeout', 1) * 1000;
const WARMUP_TOKENS = count('warmup-tokens', 0);
const TOKEN = flag('token') || process.env.XLSTM_API_TOKEN || '';
if (BATCHES.some((b) => !Number.isInteger(b) || b < 1)) throw new Error(`--batches expected positive integers, but got ${JSON.stringify(flag('batches'))}.`);

// Distinct openings, so rows of one batch do not decode the same sequence.
const OPENINGS = ['Call me Ishmael.', 'The whale', 'It was a dark and stormy night;', 'The sea was calm, and', 'Once upon a time', 'Captain Ahab stood', 'In the morning the crew', 'Far out on the water'];
const promptsFor = (n: number, offset: number): string[] => Array.from({ length: n }, (_, i) => OPENINGS[(offset + i) % OPENINGS.length]);

const SUBSCRIPTION = `subscription Generate($input: GenerateInput!) {
  generate(input: $input) {
    __typename
    ... on TokenEvent { promptIndex text }
    ... on FinishEvent { promptIndex finishReason generatedTokens }
    ... on ErrorEvent { promptIndex code message }
  }
}`;

type Event =
  | { __typename: 'TokenEvent'; promptIndex: number; text: string }
  | { __typename: 'FinishEvent'; promptIndex: number; finishReason: string; generatedTokens: number }
  | { __typename: 'ErrorEvent'; promptIndex: number; code: string; message: string };

interface Stream {
  readonly prompts: number;
  /** ms from the run's start; null before the first token of that prompt. */
  readonly firstToken: (number | null)[];
  readonly tokens: number[];
  readonly finishes: ({ reason: string; generatedTokens: number } | null)[];
  readonly errors: string[];
  readonly gaps: number[];
  end: number;
  sample: string;
}

const now = (): number => performance.now();

function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const round = (x: number | null, digits = 1): number | null => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

async function health(): Promise<Record<string, unknown>> {
  const query = '{ health { version phase backend backendDetail modelsLoaded } models { checkpoint phase backend parameterCount } }';
  const res = await fetch(HTTP_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...(TOKEN ? { authorization: `Bearer ${TOKEN}` } : {}) },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const body = (await res.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
  if (!res.ok || body.errors || !body.data) throw new Error(`health query expected data, but got HTTP ${res.status}: ${JSON.stringify(body).slice(0, 500)}`);
  return body.data;
}

/** A client whose socket is open and acknowledged, so a stream's clock does not include the handshake. */
async function connect(): Promise<Client> {
  let connected!: () => void;
  let failed!: (e: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => ((connected = resolve), (failed = reject)));
  const client = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: TOKEN ? { authorization: `Bearer ${TOKEN}` } : undefined,
    on: { connected: () => connected(), closed: (e) => failed(new Error(`socket closed before it was acknowledged: ${JSON.stringify(e)}`)), error: failed },
  });
  await withDeadline(ready, TIMEOUT_MS, 'connecting');
  return client;
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** One generate request; resolves when the subscription completes, fails, or the deadline cancels it. */
function stream(client: Client, prompts: string[], maxTokens: number, seed: number, sampling: Sampling, t0: number, deadline: number): Promise<Stream> {
  const n = prompts.length;
  const s: Stream = { prompts: n, firstToken: Array(n).fill(null), tokens: Array(n).fill(0), finishes: Array(n).fill(null), errors: [], gaps: [], end: 0, sample: '' };
  const last: number[] = Array(n).fill(0);
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      s.end = now() - t0;
      resolve(s);
    };
    const input = { prompts, maxTokens, seed, ...sampling };
    const unsubscribe = client.subscribe<{ generate: Event }>(
      { query: SUBSCRIPTION, variables: { input } },
      {
        next: (result) => {
          const t = now() - t0;
          if (result.errors) s.errors.push(...result.errors.map((e) => `${String(e.extensions?.code ?? 'ERROR')}: ${e.message}`));
          const e = result.data?.generate;
          if (!e) return;
          const i = e.promptIndex;
          if (e.__typename === 'TokenEvent') {
            if (s.firstToken[i] === null) s.firstToken[i] = t;
            else s.gaps.push(t - last[i]);
            last[i] = t;
            s.tokens[i]++;
            if (i === 0) s.sample += e.text;
          } else if (e.__typename === 'FinishEvent') {
            if (s.finishes[i]) s.errors.push(`prompt ${i} finished twice`);
            s.finishes[i] = { reason: e.finishReason, generatedTokens: e.generatedTokens };
          } else {
            s.errors.push(`prompt ${i}: ${e.code}: ${e.message}`);
          }
        },
        error: (e) => {
          s.errors.push(`stream failed: ${e instanceof Error ? e.message : JSON.stringify(e)}`);
          done();
        },
        complete: done,
      },
    );
    const timer = setTimeout(() => {
      s.errors.push(`timed out after ${((now() - t0) / 1000).toFixed(1)} s`);
      unsubscribe();
      done();
    }, Math.max(0, deadline - now()));
  });
}

interface RunFigures {
  name: string;
  clients: number;
  promptsPerClient: number;
  maxTokens: number;
  wallMs: number | null;
  tokens: number;
  tokensPerS: number | null;
  /** Per request: the first token of any of its prompts. */
  ttftMs: { p50: number | null; max: number | null };
  /** Per prompt: its own first token (later rows of a batch wait for the batch's prefill). */
  promptTtftMs: { p50: number | null; max: number | null };
  interTokenMs: { p50: number | null; p99: number | null };
  finished: number;
  prompts: number;
  finishReasons: Record<string, number>;
  sample: string;
  errors: string[];
  ok: boolean;
}

async function run(name: string, clients: number, promptsPerClient: number, maxTokens: number, sampling: Sampling = AS_ASKED): Promise<RunFigures> {
  const deadline = now() + TIMEOUT_MS;
  const errors: string[] = [];
  const conns: Client[] = [];
  let streams: Stream[] = [];
  let wall: number | null = null;
  try {
    for (let c = 0; c < clients; c++) conns.push(await connect());
    const t0 = now();
    streams = await Promise.all(conns.map((client, c) => stream(client, promptsFor(promptsPerClient, c * promptsPerClient), maxTokens, SEED + c, sampling, t0, deadline)));
    wall = Math.max(...streams.map((s) => s.end));
  } catch (e) {
    errors.push((e as Error).message);
  } finally {
    await Promise.all(conns.map((c) => c.dispose()));
  }
  const tokens = streams.reduce((a, s) => a + s.tokens.reduce((x, y) => x + y, 0), 0);
  const finishReasons: Record<string, number> = {};
  let finished = 0;
  streams.forEach((s, c) => {
    errors.push(...s.errors.map((e) => `client ${c}: ${e}`));
    s.finishes.forEach((f, i) => {
      if (!f) return errors.push(`client ${c} prompt ${i}: no FinishEvent`);
      finished++;
      finishReasons[f.reason] = (finishReasons[f.reason] ?? 0) + 1;
      if (f.generatedTokens !== s.tokens[i]) errors.push(`client ${c} prompt ${i}: FinishEvent says ${f.generatedTokens} tokens, but ${s.tokens[i]} TokenEvents came`);
      if (!['LENGTH', 'EOS', 'STOP'].includes(f.reason)) errors.push(`client ${c} prompt ${i}: finished with ${f.reason}`);
    });
  });
  const firsts = streams.map((s) => s.firstToken.filter((t): t is number => t !== null));
  const promptFirsts = firsts.flat();
  const requestFirsts = firsts.filter((f) => f.length > 0).map((f) => Math.min(...f));
  const gaps = streams.flatMap((s) => s.gaps);
  return {
    name,
    clients,
    promptsPerClient,
    maxTokens,
    wallMs: round(wall),
    tokens,
    tokensPerS: wall ? round(tokens / (wall / 1000)) : null,
    ttftMs: { p50: round(percentile(requestFirsts, 50)), max: round(percentile(requestFirsts, 100)) },
    promptTtftMs: { p50: round(percentile(promptFirsts, 50)), max: round(percentile(promptFirsts, 100)) },
    interTokenMs: { p50: round(percentile(gaps, 50), 2), p99: round(percentile(gaps, 99), 2) },
    finished,
    prompts: clients * promptsPerClient,
    finishReasons,
    sample: streams[0]?.sample.slice(0, 200) ?? '',
    errors: errors.slice(0, 20),
    ok: errors.length === 0 && finished === clients * promptsPerClient,
  };
}

function line(r: RunFigures): string {
  const reasons = Object.entries(r.finishReasons).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  return (
    `${r.name}: ${r.clients} client(s) x ${r.promptsPerClient} prompt(s), ${r.tokens} tokens in ${((r.wallMs ?? 0) / 1000).toFixed(2)} s = ${r.tokensPerS ?? '-'} tokens/s; ` +
    `TTFT p50 ${r.ttftMs.p50 ?? '-'} ms (prompts p50 ${r.promptTtftMs.p50 ?? '-'}, max ${r.promptTtftMs.max ?? '-'}); inter-token p50 ${r.interTokenMs.p50 ?? '-'} ms; ` +
    `finished ${r.finished}/${r.prompts} (${reasons}) ${r.ok ? 'ok' : `FAILED: ${r.errors.slice(0, 3).join('; ')}`}`
  );
}

const started = new Date().toISOString();
const settings = { url: HTTP_URL, maxTokens: MAX_TOKENS, batches: BATCHES, clients: CLIENTS, clientPrompts: CLIENT_PROMPTS, temperature: TEMPERATURE, sampled: SAMPLED ? DRAWN : null, seed: SEED, timeoutS: TIMEOUT_MS / 1000, warmupTokens: WARMUP_TOKENS };
let info: Record<string, unknown> | null = null;
const runs: RunFigures[] = [];
let failure: string | null = null;
try {
  info = await health();
  console.log(`health: ${JSON.stringify(info)}`);
  // The first request on a fresh server builds kernels for its shapes; it is reported but kept apart.
  if (WARMUP_TOKENS > 0) runs.push(await run('warm-up', 1, 1, WARMUP_TOKENS));
  for (const b of BATCHES) runs.push(await run(`batch-${b}`, 1, b, MAX_TOKENS));
  if (CLIENTS > 0) runs.push(await run(`clients-${CLIENTS}x${CLIENT_PROMPTS}`, CLIENTS, CLIENT_PROMPTS, MAX_TOKENS));
  if (CLIENTS > 0 && SAMPLED) runs.push(await run(`clients-${CLIENTS}x${CLIENT_PROMPTS}-sampled`, CLIENTS, CLIENT_PROMPTS, MAX_TOKENS, DRAWN));
  for (const r of runs) console.log(line(r));
} catch (e) {
  failure = (e as Error).message;
  console.error(`generate-client: ${failure}`);
}
const ok = failure === null && runs.length > 0 && runs.every((r) => r.ok);
const out = flag('out');
if (out) writeFileSync(out, `${JSON.stringify({ started, settings, health: info, runs, failure, ok }, null, 2)}\n`);
console.log(ok ? 'generate-client: every stream finished' : 'generate-client: FAILED');
process.exit(ok ? 0 : 1);
