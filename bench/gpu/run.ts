/**
 * The GPU benchmark of our core on tfjs's webgpu backend (docs/GPU.md): correctness on the
 * device against the float64 fixtures and of the fused training blocks against the cpu backend at
 * B = 16 and 32 (blocks-check.ts), decode tokens/s at B = 1, 8, 64, 256 (fused step, head,
 * greedy on the device, token ids read back every step) with dispatches per step, the op-by-op step
 * for contrast, and training tokens/s at B = 16, T = 256 (forward, backward, AdamW). Writes JSON.
 *
 *   node bench.mjs run --root REPO --out OURS.json [--quick]
 *   node bench.mjs combine --ours OURS.json --peer-decode P1.json --peer-train P2.json --out GPU.json
 *
 * prepare.sh bundles this file with esbuild (no tsx on the device); it also runs here through tsx
 * on a software adapter (XLSTM_WEBGPU_BACKEND=opengles) with --quick.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { selectBackend } from '../../src/backend/select.ts';
import { webgpuAdapter } from '../../src/backend/webgpu.ts';
import { blocksCheck } from './blocks-check.ts';
import { maxRelDiff } from '../../test/support/rel-diff.ts';
import { adamwStepsGpu } from '../../src/core/gpu/adamw.ts';
import { decodeStepGpu } from '../../src/core/gpu/decode-step.ts';
import { greedyTokens } from '../../src/core/gpu/greedy.ts';
import { cachedPackedWeights, PACKED } from '../../src/core/gpu/pack.ts';
import {
  deriveDims,
  disposeState,
  keepState,
  modelParams,
  nextTokenLoss,
  REFERENCE_CONFIG,
  validateModelConfig,
  weightEntries,
  XlstmModel,
  type ModelConfig,
  type ModelState,
  type NamedArray,
} from '../../src/core/index.ts';
import { Rng } from '../../src/util/rng.ts';

const [mode, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
  args: rest,
  options: {
    root: { type: 'string', default: '.' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    ours: { type: 'string' },
    'peer-decode': { type: 'string' },
    'peer-train': { type: 'string' },
  },
});

const log = (line: string) => console.log(line);

/** Counts every compute dispatch (tfjs's programs and ours) by wrapping Dawn's encoder method. */
const dispatches = { n: 0 };
function countDispatches(): void {
  const proto = (globalThis as unknown as { GPUComputePassEncoder?: { prototype: Record<string, unknown> } }).GPUComputePassEncoder?.prototype;
  if (!proto || proto.__counted) return;
  const original = proto.dispatchWorkgroups as (...a: unknown[]) => void;
  proto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
    dispatches.n++;
    return original.apply(this, a);
  };
  proto.__counted = true;
}

function loadFixture(name: string): { config: ModelConfig; model: XlstmModel; tokens: number[][]; logits: number[] } {
  const raw = JSON.parse(readFileSync(path.join(values.root!, `test/fixtures/ref-${name}.json`), 'utf8')) as {
    config: unknown;
    tokens: number[][];
    params: Record<string, { values: number[] }>;
    logits: number[][][];
  };
  const config = validateModelConfig(raw.config);
  const arrays = new Map<string, NamedArray>();
  for (const spec of modelParams(deriveDims(config))) {
    const p = raw.params[spec.name];
    if (p) arrays.set(spec.name, { shape: [...spec.shape], data: Float32Array.from(p.values) });
  }
  return { config, model: XlstmModel.fromArrays(config, arrays), tokens: raw.tokens, logits: raw.logits.flat(2) };
}

/** The fixtures' float64 logits against the device's forward in every form (max relative difference). */
async function correctness(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of ['tiny', 'noconv']) {
    const fx = loadFixture(name);
    for (const form of ['parallel', 'chunkwise', 'recurrent'] as const) {
      const t = tf.tidy(() => fx.model.forward(tf.tensor2d(fx.tokens, undefined, 'int32'), form));
      out[`${name} ${form}`] = maxRelDiff(await t.data(), fx.logits);
      t.dispose();
    }
    fx.model.dispose();
  }
  return out;
}

interface DecodeFigures {
  batch: number;
  steps: number;
  msPerStep: number;
  tokensPerS: number;
  dispatchesPerStep: number;
  /** Steps queued without reading ids back in between (the device's own rate). */
  pipelinedMsPerStep?: number;
  pipelinedTokensPerS?: number;
}

/** Greedy decode as a server runs it: step, head, greedy on the device, ids read back each step. */
async function benchDecode(model: XlstmModel, B: number, warmup: number, steps: number, opStep = false): Promise<DecodeFigures> {
  const rng = new Rng(B);
  let ids = tf.tensor1d(Array.from({ length: B }, () => rng.int(model.dims.V)), 'int32');
  let state: ModelState = keepState(tf.tidy(() => model.initState(B)));
  const one = () => {
    const out = tf.tidy(() => {
      const r = opStep ? model.opStep(ids, state) : model.step(ids, state);
      return { ids: greedyTokens(r.logits).ids, state: keepState(r.state) };
    });
    disposeState(state);
    ids.dispose();
    state = out.state;
    ids = out.ids;
  };
  for (let j = 0; j < warmup; j++) {
    one();
    await ids.data();
  }
  const d0 = dispatches.n;
  const t0 = performance.now();
  for (let j = 0; j < steps; j++) {
    one();
    await ids.data(); // the server needs the ids to detokenize: one small readback per step
  }
  const secs = (performance.now() - t0) / 1000;
  const fig: DecodeFigures = {
    batch: B,
    steps,
    msPerStep: (1000 * secs) / steps,
    tokensPerS: (B * steps) / secs,
    dispatchesPerStep: (dispatches.n - d0) / steps,
  };
  if (!opStep) {
    const t1 = performance.now();
    for (let j = 0; j < steps; j++) one();
    await ids.data();
    const s2 = (performance.now() - t1) / 1000;
    fig.pipelinedMsPerStep = (1000 * s2) / steps;
    fig.pipelinedTokensPerS = (B * steps) / s2;
  }
  disposeState(state);
  ids.dispose();
  return fig;
}

/**
 * Forward, backward and AdamW (PyTorch's update, weight decay 0.1, lr 1e-4, no clipping, as the
 * peer) on random tokens; the loss is read back every step. src/train's AdamW reads the gradient
 * norm synchronously, which webgpu under Node cannot: the update here is the fused WGSL AdamW
 * (src/core/gpu/adamw.ts), one dispatch per two parameter tensors.
 */
async function benchTrain(base: XlstmModel, B: number, T: number, warmup: number, steps: number) {
  const model = base.asTrainable();
  const entries = weightEntries(model.weights) as [string, tf.Variable][];
  const moments = entries.map(([, v]) => ({ m: tf.variable(tf.zerosLike(v), false), v: tf.variable(tf.zerosLike(v), false) }));
  const byVar = new Map(entries.map(([, v], j) => [v.name, j]));
  const hyper = { lr: 1e-4, b1: 0.9, b2: 0.999, eps: 1e-8, weightDecay: 0.1, gradScale: 1 };
  const rng = new Rng(T);
  let t = 0;
  let lastLoss = NaN;
  const batch = () => tf.tensor2d(Array.from({ length: B * (T + 1) }, () => rng.int(base.dims.V)), [B, T + 1], 'int32');
  const update = (grads: tf.NamedTensorMap) => {
    t++;
    tf.tidy(() => {
      const js = Object.keys(grads).map((name) => byVar.get(name)!);
      const out = adamwStepsGpu(Object.values(grads).map((g, i) => ({ p: entries[js[i]][1], g, ...moments[js[i]] })), t, hyper);
      out.forEach((r, i) => {
        entries[js[i]][1].assign(r.p);
        moments[js[i]].m.assign(r.m);
        moments[js[i]].v.assign(r.v);
      });
    });
  };
  /** Waits for the device: a one-element read of the last updated moment. */
  const drain = async () => {
    const probe = tf.tidy(() => tf.slice(tf.reshape(moments[moments.length - 1].m, [-1]), [0], [1]));
    await probe.data();
    probe.dispose();
  };
  const one = async () => {
    const windows = batch();
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, windows));
    update(grads);
    lastLoss = (await value.data())[0];
    tf.dispose([value, windows, ...Object.values(grads)]);
  };
  for (let j = 0; j < warmup; j++) await one();
  const d0 = dispatches.n;
  const t0 = performance.now();
  for (let j = 0; j < steps; j++) await one();
  const secs = (performance.now() - t0) / 1000;
  const dispatchesPerStep = (dispatches.n - d0) / steps;

  // Where a step goes: forward alone, forward + backward, the update alone (each waited for).
  const phases: Record<string, { ms: number; dispatches: number }> = {};
  const phase = async (name: string, f: () => Promise<void>) => {
    const n0 = dispatches.n;
    const p0 = performance.now();
    await f();
    phases[name] = { ms: performance.now() - p0, dispatches: dispatches.n - n0 };
  };
  const windows = batch();
  await phase('forward', async () => {
    const loss = tf.tidy(() => nextTokenLoss(model, windows));
    await loss.data();
    loss.dispose();
  });
  let grads: tf.NamedTensorMap = {};
  await phase('forward+backward', async () => {
    const r = tf.variableGrads(() => nextTokenLoss(model, windows));
    grads = r.grads;
    await r.value.data();
    r.value.dispose();
  });
  await phase('adamw', async () => {
    update(grads);
    await drain();
  });
  tf.dispose([windows, ...Object.values(grads)]);
  for (const { m, v } of moments) tf.dispose([m, v]);
  model.dispose();
  return { batch: B, seqLen: T, steps, sPerStep: secs / steps, tokensPerS: (B * T * steps) / secs, lastLoss, dispatchesPerStep, phases };
}

/**
 * GPU time of the decode step's parts, each queued `steps` times with one wait at the end (the
 * device's rate, not the round trip): the fused blocks kernel, the head matMul, greedy.
 */
async function decodeParts(model: XlstmModel, B: number, steps: number): Promise<Record<string, number>> {
  const timeIt = async (f: () => tf.Tensor) => {
    const warm = f(); // compiles the pipeline
    await warm.data();
    warm.dispose();
    const p0 = performance.now();
    let last: tf.Tensor | null = null;
    for (let j = 0; j < steps; j++) {
      last?.dispose();
      last = f();
    }
    await last!.data();
    last!.dispose();
    return (performance.now() - p0) / steps;
  };
  const tokens = tf.tensor1d(Array.from({ length: B }, (_, j) => (j * 7919) % model.dims.V), 'int32');
  const state = keepState(tf.tidy(() => model.initState(B)));
  const packed = tf.tidy(() => cachedPackedWeights(model.weights, model.dims));
  const x = tf.randomNormal([B, model.dims.d]) as tf.Tensor2D;
  const logits = tf.tidy(() => model.head(x));
  const out = {
    blocksMs: await timeIt(() => tf.tidy(() => {
      const r = decodeStepGpu(model.dims, tokens, model.weights.embedding, packed, state[0][PACKED] as tf.Tensor2D);
      r.state.dispose();
      return r.x;
    })),
    headMs: await timeIt(() => tf.tidy(() => model.head(x))),
    greedyMs: await timeIt(() => tf.tidy(() => {
      const g = greedyTokens(logits);
      g.logprobs.dispose();
      return g.ids;
    })),
  };
  tf.dispose([tokens, x, logits]);
  disposeState(state);
  return out;
}

function machine(): Record<string, unknown> {
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}`, date: new Date().toISOString() };
}

async function run(): Promise<void> {
  const quick = values.quick;
  const backend = await selectBackend(process.env.XLSTM_BACKEND ?? 'webgpu');
  countDispatches();
  log(`backend ${backend.name}: ${backend.detail}`);
  const result: Record<string, unknown> = { machine: machine(), backend, adapter: webgpuAdapter() };
  const save = () => values.out && writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  const t0 = performance.now();
  result.correctness = await correctness();
  log(`correctness (max relative difference to the float64 fixtures): ${JSON.stringify(result.correctness)}`);
  save();
  // The fused training blocks at the trained size and twice it, against the cpu backend.
  const blocks: Record<string, { mlstm: number; slstm: number }> = {};
  for (const B of quick ? [2] : [16, 32]) {
    const T = quick ? 16 : 256;
    blocks[`B=${B} T=${T}`] = await blocksCheck(B, T);
  }
  result.trainingBlocks = blocks;
  log(`training blocks, largest relative difference of the gradients to the cpu backend: ${JSON.stringify(blocks)}`);
  save();

  const model = XlstmModel.init(REFERENCE_CONFIG, 0);
  log(`reference config: ${model.parameterCount()} parameters, ${model.dims.kinds.length} blocks; ${((performance.now() - t0) / 1000).toFixed(1)} s so far`);
  const decode: DecodeFigures[] = [];
  for (const B of quick ? [1, 8] : [1, 8, 64, 256]) {
    const fig = await benchDecode(model, B, quick ? 2 : 8, quick ? 4 : 64);
    decode.push(fig);
    log(`decode B=${B}: ${fig.msPerStep.toFixed(2)} ms/step, ${fig.tokensPerS.toFixed(1)} tokens/s, ${fig.dispatchesPerStep} dispatches/step; pipelined ${fig.pipelinedMsPerStep?.toFixed(2)} ms/step, ${fig.pipelinedTokensPerS?.toFixed(1)} tokens/s`);
    result.decode = decode;
    save();
  }
  {
    const parts: Record<number, Record<string, number>> = {};
    for (const B of quick ? [1] : [1, 256]) parts[B] = await decodeParts(model, B, quick ? 4 : 64);
    result.decodeParts = parts;
    log(`decode parts (ms per step, queued): ${JSON.stringify(parts)}`);
    save();
  }
  const ops = await benchDecode(model, 1, 1, quick ? 1 : 3, true);
  result.decodeOpByOp = ops;
  log(`decode B=1 op by op (no fused step): ${ops.msPerStep.toFixed(1)} ms/step, ${ops.dispatchesPerStep} dispatches/step`);
  save();
  const train = await benchTrain(model, quick ? 2 : 16, quick ? 32 : 256, 1, quick ? 1 : 3);
  result.train = [train];
  log(`train B=${train.batch} T=${train.seqLen}: ${train.sPerStep.toFixed(3)} s/step, ${train.tokensPerS.toFixed(1)} tokens/s (loss ${train.lastLoss.toFixed(3)}), ${train.dispatchesPerStep} dispatches/step; phases ${JSON.stringify(train.phases)}`);
  model.dispose();
  result.seconds = (performance.now() - t0) / 1000;
  save();
}

interface PeerJson {
  torch: string;
  device_name: string;
  decode: { batch: number; tokens_per_s: number; ms_per_step: number }[];
  train: { batch: number; seq_len: number; tokens_per_s: number; s_per_step: number; steps: number }[];
}

function combine(): void {
  const read = <T>(p?: string): T | null => (p && existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as T) : null);
  const ours = read<{ decode?: DecodeFigures[]; train?: { batch: number; seqLen: number; tokensPerS: number }[] } & Record<string, unknown>>(values.ours);
  const peerDecode = read<PeerJson>(values['peer-decode']);
  const peerTrain = read<PeerJson>(values['peer-train']);
  const rows: Record<string, unknown>[] = [];
  for (const d of ours?.decode ?? []) {
    const p = peerDecode?.decode.find((x) => x.batch === d.batch);
    rows.push({ figure: `decode B=${d.batch}`, ours: d.tokensPerS, peer: p?.tokens_per_s ?? null, ratio: p ? d.tokensPerS / p.tokens_per_s : null, target: d.batch === 1 || d.batch === 256 ? 10 : null });
  }
  for (const t of ours?.train ?? []) {
    const p = peerTrain?.train.find((x) => x.batch === t.batch && x.seq_len === t.seqLen);
    rows.push({ figure: `train B=${t.batch} T=${t.seqLen}`, ours: t.tokensPerS, peer: p?.tokens_per_s ?? null, ratio: p ? t.tokensPerS / p.tokens_per_s : null, target: 5 });
  }
  for (const r of rows) {
    const f = (x: unknown, n = 1) => (typeof x === 'number' ? x.toFixed(n) : '-');
    log(`${String(r.figure).padEnd(18)}${f(r.ours).padStart(12)}${f(r.peer).padStart(12)}${f(r.ratio, 2).padStart(9)}`);
  }
  writeFileSync(values.out!, `${JSON.stringify({ ours, peer: { decode: peerDecode, train: peerTrain }, rows }, null, 2)}\n`);
}

try {
  if (mode === 'run') await run();
  else if (mode === 'combine') combine();
  else throw new Error(`bench/gpu/run.ts expected a mode "run" or "combine", but got "${mode}"`);
} catch (e) {
  console.error(e instanceof Error ? e.stack : e);
  process.exitCode = 1;
}
// Dawn keeps the event loop alive; leave once the figures are written.
try {
  delete (globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu;
} catch {
  /* read-only navigator: nothing to release */
}
process.exit(process.exitCode ?? 0);
