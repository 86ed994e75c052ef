/**
 * `npm run bench:serve`: N = 1, 8, 64 concurrent generate subscriptions over real sockets against `xlstm serve`
 * (a child process), measuring aggregate tokens/s, time to first token and inter-token latency (p50, p99) at the
 * clients; then the bare core's decode at the same batch, without the server, on the path the server decodes
 * on: a DecodePool of --decode-threads worker threads (the serve default: one per core), and in this thread
 * (step, logits read, per-row sampling). server/core compares the server with the core on its own path, so it
 * is the server's overhead. The server and the bare pool are measured alternately, --rounds times each at every
 * N, and each keeps its best round, so that a passing disturbance does not land on one side only. 128 tokens a
 * subscription by default: at 32, a round of N = 64 lasts about half a second and its figure moves by +-15%. The clients
 * are a minimal graphql-transport-ws client (bench/lib/subscription-client.ts): they share the cores with the
 * server. Prints a table, writes bench/results/serve.json. Run it with nothing else on the machine.
 */
import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { selectBackend } from '../src/backend/select.ts';
import { packageVersion } from '../src/cli/paths.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/checkpoint/index.ts';
import { concatStates, disposeState, REFERENCE_CONFIG, sampleToken, XlstmModel, type ModelState } from '../src/core/index.ts';
import { CheckpointCatalogue, DecodePool, decodeThreadsOn, promptRng, resolveDecodeThreads, type RowId } from '../src/serve/index.ts';
import { Tokenizer } from '../src/tokenizer/index.ts';
import { machine } from './lib/machine.ts';
import { streamTokens } from './lib/subscription-client.ts';

const { values } = parseArgs({
  options: {
    checkpoint: { type: 'string' },
    'checkpoints-dir': { type: 'string', default: 'checkpoints' },
    tokens: { type: 'string', default: '128' },
    batches: { type: 'string', default: '1,8,64' },
    out: { type: 'string', default: 'bench/results/serve.json' },
    /** As `xlstm serve --decode-threads`; default one per core. */
    'decode-threads': { type: 'string' },
    rounds: { type: 'string', default: '3' },
  },
});
const DECODE_THREADS = resolveDecodeThreads(values['decode-threads'] === undefined ? undefined : Number(values['decode-threads']));
const TOKENS = Number(values.tokens);
const BATCHES = values.batches.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const SAMPLING = { temperature: 1, topK: 50, topP: 1 };
const PROMPT = 'Once upon a time, in a land far away,';
/** The command line to serve with; XLSTM_SERVE_BIN names a bundled build of it (bench/gpu/prepare-serve.sh's). */
const BIN = process.env.XLSTM_SERVE_BIN ?? new URL('../bin/xlstm.js', import.meta.url).pathname;

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The served checkpoint: the one asked for, the default one, or a fresh reference-config model in a temp folder. */
async function pickCheckpoint(): Promise<{ root: string; id: string; cleanup: () => void }> {
  const root = path.resolve(values['checkpoints-dir']);
  const catalogue = await CheckpointCatalogue.open(root, values.checkpoint);
  if (catalogue.defaultId) return { root, id: catalogue.defaultId, cleanup: () => {} };
  const temp = mkdtempSync(path.join(tmpdir(), 'xlstm-bench-'));
  await selectBackend(process.env.XLSTM_BACKEND);
  const model = XlstmModel.init(REFERENCE_CONFIG, 0);
  await saveCheckpoint(path.join(temp, 'reference-init'), {
    config: REFERENCE_CONFIG,
    tensors: model.toArrays(),
    tokenizerJson: Tokenizer.gpt2().toJson(),
    meta: { provenance: { command: 'bench/serve.ts', notes: 'fresh reference-config initialisation (no default checkpoint)' } },
  });
  model.dispose();
  return { root: temp, id: 'reference-init', cleanup: () => rmSync(temp, { recursive: true, force: true }) };
}

async function startServer(root: string, id: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      BIN, 'serve', '--port', '0', '--checkpoints-dir', root, '--checkpoint', id, '--no-playground', '--max-active', '64', '--max-queued', '64',
      '--max-tokens', String(Math.max(TOKENS, 64)), '--decode-threads', String(DECODE_THREADS),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: process.env },
  );
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const lines: string[] = [];
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line);
      const found = /at (http:\/\/\S+\/graphql)/.exec(line)?.[1];
      if (found) resolve(found);
    });
    void exited.then(() => reject(new Error(`xlstm serve exited early:\n${lines.join('\n')}`)));
  });
  return {
    url,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface ServerFigures {
  tokensPerS: number;
  ttftMs: { p50: number; p99: number };
  interTokenMs: { p50: number; p99: number };
  tokens: number;
}

const SUBSCRIPTION = `subscription($input: GenerateInput!) { generate(input: $input) { __typename } }`;

/** N clients, each on its own socket, each streaming one prompt of TOKENS tokens. */
async function measureServer(wsUrl: string, N: number): Promise<ServerFigures> {
  const runs = await Promise.all(
    Array.from({ length: N }, (_, i) => streamTokens(wsUrl, SUBSCRIPTION, { input: { prompts: [PROMPT], maxTokens: TOKENS, ...SAMPLING, seed: i } })),
  );
  const first = Math.min(...runs.map((r) => r.start));
  const last = Math.max(...runs.map((r) => r.arrivals.at(-1) ?? r.start));
  const tokens = runs.reduce((n, r) => n + r.arrivals.length, 0);
  const ttft = runs.map((r) => r.arrivals[0] - r.start);
  const gaps = runs.flatMap((r) => r.arrivals.slice(1).map((t, j) => t - r.arrivals[j]));
  return {
    tokensPerS: tokens / ((last - first) / 1000),
    ttftMs: { p50: percentile(ttft, 50), p99: percentile(ttft, 99) },
    interTokenMs: { p50: percentile(gaps, 50), p99: percentile(gaps, 99) },
    tokens,
  };
}

/** The bare core: the scheduler's work without the server (B prefills, then batched steps with per-row sampling). */
function measureCore(model: XlstmModel, tokenizer: Tokenizer, B: number): { tokensPerS: number; stepMs: { p50: number; p99: number } } {
  const prompt = tokenizer.encode(PROMPT);
  const rngs = Array.from({ length: B }, (_, i) => promptRng(i, 0));
  const V = model.dims.V;
  const t0 = performance.now();
  const states: ModelState[] = [];
  let ids: number[] = [];
  for (let i = 0; i < B; i++) {
    const out = tf.tidy(() => model.prefill(tf.tensor2d([prompt], undefined, 'int32')) as unknown as tf.TensorContainer) as unknown as {
      logits: tf.Tensor2D;
      state: ModelState;
    };
    ids.push(sampleToken(out.logits.dataSync() as Float32Array, SAMPLING, rngs[i]).id);
    out.logits.dispose();
    states.push(out.state);
  }
  let state = tf.tidy(() => concatStates(states) as unknown as tf.TensorContainer) as unknown as ModelState;
  states.forEach(disposeState);
  const steps: number[] = [];
  for (let s = 1; s < TOKENS; s++) {
    const ts = performance.now();
    const prev = state;
    const out = tf.tidy(() => model.step(tf.tensor1d(ids, 'int32'), prev) as unknown as tf.TensorContainer) as unknown as {
      logits: tf.Tensor2D;
      state: ModelState;
    };
    disposeState(prev);
    state = out.state;
    // As in the scheduler: the row normalisers in one batched op, then the logits read once per step.
    const lse = tf.tidy(() => tf.logSumExp(out.logits, 1));
    const data = out.logits.dataSync() as Float32Array; // sync: logits and normalisers, once per step
    const logZ = lse.dataSync() as Float32Array;
    out.logits.dispose();
    lse.dispose();
    ids = ids.map((_, i) => sampleToken(data.subarray(i * V, (i + 1) * V), SAMPLING, rngs[i], logZ[i]).id);
    steps.push(performance.now() - ts);
  }
  disposeState(state);
  const secs = (performance.now() - t0) / 1000;
  return { tokensPerS: (B * TOKENS) / secs, stepMs: { p50: percentile(steps, 50), p99: percentile(steps, 99) } };
}

/**
 * The bare core on the server's pool path: B prompts admitted at once (prefilled side by side on the threads,
 * each sampling its first token), then batched steps; per-row sampling with each prompt's own stream, on the
 * workers, as the server's scheduler drives them.
 */
async function measureCorePool(pool: DecodePool, tokenizer: Tokenizer, B: number): Promise<{ tokensPerS: number; stepMs: { p50: number; p99: number } }> {
  const prompt = tokenizer.encode(PROMPT);
  const rngs = Array.from({ length: B }, (_, i) => promptRng(i, 0));
  const t0 = performance.now();
  const admitted = await pool.admit(rngs.map((rng) => ({ tokens: prompt, sampling: SAMPLING, uniform: rng.uniform() })));
  const rows: RowId[] = admitted.map((a) => a.row);
  let ids = admitted.map((a) => a.id);
  const steps: number[] = [];
  for (let s = 1; s < TOKENS; s++) {
    const ts = performance.now();
    const out = await pool.step(new Map(rows.map((row, i) => [row, { token: ids[i], sampling: SAMPLING, uniform: rngs[i].uniform() }])));
    ids = rows.map((row) => (out.get(row) as { id: number }).id);
    steps.push(performance.now() - ts);
  }
  await pool.retire(rows);
  const secs = (performance.now() - t0) / 1000;
  return { tokensPerS: (B * TOKENS) / secs, stepMs: { p50: percentile(steps, 50), p99: percentile(steps, 99) } };
}

const { root, id, cleanup } = await pickCheckpoint();
const server = await startServer(root, id);
const wsUrl = server.url.replace(/^http/, 'ws');
console.log(`server: ${server.url} serving ${id}; ${TOKENS} tokens per subscription`);

const backend = await selectBackend(process.env.XLSTM_BACKEND);
const loaded = await loadCheckpoint(path.join(root, id));
const named = new Map([...loaded.tensors].map(([name, t]) => [name, tf.tensor(t.data, t.shape)]));
const model = XlstmModel.fromNamed(loaded.config, named);
named.forEach((t) => t.dispose());
const tokenizer = loaded.tokenizerJson ? Tokenizer.fromJson(loaded.tokenizerJson) : Tokenizer.gpt2();
// The server's decode path: a pool when it decodes on threads (cpu and wasm), else in this thread.
const threads = decodeThreadsOn(backend.name, DECODE_THREADS);
const pool =
  threads > 1
    ? await DecodePool.create({ config: loaded.config, arrays: model.toArrays(), threads, backend: backend.name as 'cpu' | 'wasm', suppressToken: tokenizer.padId })
    : null;

const best = <T extends { tokensPerS: number }>(a: T | undefined, b: T): T => (a && a.tokensPerS >= b.tokensPerS ? a : b);
const served: Record<number, ServerFigures> = {};
const core: Record<number, ReturnType<typeof measureCore>> = {};
const corePool: Record<number, Awaited<ReturnType<typeof measureCorePool>>> = {};
try {
  // Warm-ups: kernels compiled, first sockets opened, buffers grown.
  await measureServer(wsUrl, 1);
  measureCore(model, tokenizer, 1);
  if (pool) await measureCorePool(pool, tokenizer, 1);
  for (const N of BATCHES) {
    for (let round = 0; round < ROUNDS; round++) {
      served[N] = best(served[N], await measureServer(wsUrl, N));
      if (pool) corePool[N] = best(corePool[N], await measureCorePool(pool, tokenizer, N));
    }
    core[N] = measureCore(model, tokenizer, N);
    const f = served[N];
    console.log(
      `server N=${N}: ${f.tokensPerS.toFixed(1)} tokens/s, TTFT p50 ${f.ttftMs.p50.toFixed(1)} ms p99 ${f.ttftMs.p99.toFixed(1)} ms, ` +
        `inter-token p50 ${f.interTokenMs.p50.toFixed(1)} ms p99 ${f.interTokenMs.p99.toFixed(1)} ms`,
    );
    if (pool) console.log(`core pool x${threads} B=${N}: ${corePool[N].tokensPerS.toFixed(1)} tokens/s, step p50 ${corePool[N].stepMs.p50.toFixed(1)} ms p99 ${corePool[N].stepMs.p99.toFixed(1)} ms`);
    console.log(`core in-process B=${N}: ${core[N].tokensPerS.toFixed(1)} tokens/s, step p50 ${core[N].stepMs.p50.toFixed(1)} ms p99 ${core[N].stepMs.p99.toFixed(1)} ms`);
  }
} finally {
  await pool?.close();
  await server.stop();
  model.dispose();
  cleanup();
}

const serverPath = threads > 1 ? `pool x${threads}` : 'in-process';
const sameCore = (N: number) => (threads > 1 ? corePool[N] : core[N]);
console.log(`\nserver decodes on: ${serverPath}\n  N   server tokens/s   core in-process   core ${serverPath.padEnd(10)}   server/core (${serverPath})`);
for (const N of BATCHES) {
  console.log(
    `${String(N).padStart(3)}   ${served[N].tokensPerS.toFixed(1).padStart(15)}   ${core[N].tokensPerS.toFixed(1).padStart(15)}   ` +
      `${sameCore(N).tokensPerS.toFixed(1).padStart(15)}   ${(served[N].tokensPerS / sameCore(N).tokensPerS).toFixed(2).padStart(11)}`,
  );
}
mkdirSync(path.dirname(values.out), { recursive: true });
writeFileSync(
  values.out,
  `${JSON.stringify(
    {
      machine: machine(),
      backend: backend.name,
      checkpoint: id,
      config: loaded.config,
      tokensPerSubscription: TOKENS,
      roundsEach: ROUNDS,
      sampling: SAMPLING,
      version: packageVersion(),
      serverDecode: serverPath,
      results: BATCHES.map((N) => ({
        concurrency: N,
        server: served[N],
        core: sameCore(N),
        coreInProcess: core[N],
        corePool: corePool[N] ?? null,
        serverOverCore: served[N].tokensPerS / sameCore(N).tokensPerS,
      })),
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${values.out}`);
