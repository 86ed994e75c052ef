/**
 * Data-parallel training across GPUs (issue 8, docs/GPU.md), as `trainer.devices: N` runs it: one
 * worker process per GPU computes the gradient sum of its rows, the trainer process adds them and
 * applies one AdamW update, then ships the new weights. Three runs from the same initial weights:
 *   1 GPU,  batch B      timed: tokens/s(1)
 *   N GPUs, batch B each timed: tokens/s(N), efficiency = tokens/s(N) / (N x tokens/s(1))
 *   1 GPU,  batch N x B  the same batches as the N-GPU run: its loss curve must equal theirs
 * While each timed run steps, nvidia-smi (when present) is sampled to show which cards worked.
 *
 *   node multi.mjs --root REPO --out OUT.json --worker WORKER.mjs [--gpus N] [--quick]
 *
 * prepare.sh bundles this file and src/train/worker-entry.ts (no tsx on the device). Locally:
 *   XLSTM_WEBGPU_BACKEND=opengles node --import tsx bench/gpu/multi.ts --quick --out /tmp/multi.json
 */
import * as tf from '@tensorflow/tfjs-core';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { driPrimeTag, normaliseAddress, pciGpus } from '../../src/backend/gpu-devices.ts';
import { selectBackend } from '../../src/backend/select.ts';
import { REFERENCE_CONFIG, weightEntries, XlstmModel, type ModelConfig } from '../../src/core/index.ts';
import type { Batch } from '../../src/data/index.ts';
import { applyGradientSum, optimizerFor } from '../../src/train/step.ts';
import type { WorkerSeconds } from '../../src/train/worker-protocol.ts';
import { WorkerPool, type WorkerPlacement } from '../../src/train/workers.ts';
import { Rng } from '../../src/util/rng.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    worker: { type: 'string' },
    'worker-backend': { type: 'string', default: 'webgpu' },
    gpus: { type: 'string' },
    batch: { type: 'string' },
    seq: { type: 'string' },
    warmup: { type: 'string', default: '1' },
    steps: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});

const quick = values.quick;
const QUICK_CONFIG: ModelConfig = { ...REFERENCE_CONFIG, vocab_size: 512, num_layers: 1, signature: [1, 1], inp_dim: 16, head_dim: 4, head_num: 4 };
const config = quick ? QUICK_CONFIG : REFERENCE_CONFIG;
const found = pciGpus().length;
const N = Number(values.gpus ?? Math.max(2, found));
const B = Number(values.batch ?? (quick ? 2 : 16));
const T = Number(values.seq ?? (quick ? 16 : 256));
const WARMUP = Number(values.warmup);
const STEPS = Number(values.steps ?? (quick ? 2 : 3));
// A sub-vocabulary, so that the loss visibly falls within a few steps (ln V -> ln SUB).
const SUB = Math.min(1000, config.vocab_size - 1);
const PAD = config.vocab_size - 1;
const LR = 1e-3;

const log = (line: string) => console.log(line);

/** Step s's rows: the same tokens whichever run asks, so runs differ only in how rows are split. */
function batchFor(step: number, rows: number): Batch {
  const rng = new Rng(1000 + step);
  const tokens = Int32Array.from({ length: N * B * (T + 1) }, () => rng.int(SUB));
  return { tokens: tokens.slice(0, rows * (T + 1)), batch: rows, length: T + 1 };
}

interface GpuSample {
  readonly at: number;
  readonly gpus: { index: number; bus: string; utilization: number; memoryMiB: number }[];
  readonly apps: { pid: number; bus: string; memoryMiB: number }[];
}

function nvidiaSmi(args: string[]): Promise<string[][] | null> {
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { timeout: 10_000 }, (error, stdout) => {
      if (error) return resolve(null);
      resolve(stdout.trim().split('\n').filter(Boolean).map((l) => l.split(',').map((x) => x.trim())));
    });
  });
}

/** Samples the cards every second until stopped (nothing where there is no nvidia-smi). */
function sampleGpus(): { stop(): Promise<GpuSample[]> } {
  const samples: GpuSample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const g = await nvidiaSmi(['--query-gpu=index,pci.bus_id,utilization.gpu,memory.used', '--format=csv,noheader,nounits']);
      if (!g) return;
      const a = await nvidiaSmi(['--query-compute-apps=pid,gpu_bus_id,used_memory', '--format=csv,noheader,nounits']);
      samples.push({
        at: Date.now(),
        gpus: g.map(([index, bus, util, mem]) => ({ index: Number(index), bus, utilization: Number(util), memoryMiB: Number(mem) })),
        apps: (a ?? []).map(([pid, bus, mem]) => ({ pid: Number(pid), bus, memoryMiB: Number(mem) })),
      });
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

interface RunFigures {
  readonly gpus: number;
  readonly batchPerGpu: number;
  readonly seqLen: number;
  readonly losses: number[];
  readonly stepSeconds: number[];
  /** Of each step: the trainer's AdamW update (the rest is the workers' gradients and the transfers). */
  readonly updateSeconds: number[];
  /** Of each step, each worker's seconds on its gradients and on reading them back. */
  readonly workerSeconds: (readonly WorkerSeconds[])[];
  readonly tokensPerS: number | null;
  readonly placements: WorkerPlacement[];
  readonly busiest: Record<string, number>;
  readonly apps: GpuSample['apps'];
}

/** One run from the initial weights: `gpus` workers, `rows` rows per step in all. */
async function trainRun(gpus: number, rows: number, steps: number, timed: boolean): Promise<RunFigures> {
  const base = XlstmModel.init(config, 0);
  const model = base.asTrainable();
  base.dispose();
  const adamw = optimizerFor(model, { optimizer: { lr: LR, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.1 }, trainer: { grad_clip: 1 } });
  const names = weightEntries(model.weights).map(([name]) => name);
  const pool = await WorkerPool.start({ devices: gpus, model, padId: PAD, backend: values['worker-backend']!, entry: values.worker });
  const losses: number[] = [];
  const stepSeconds: number[] = [];
  const updateSeconds: number[] = [];
  const workerSeconds: (readonly WorkerSeconds[])[] = [];
  let sampler: ReturnType<typeof sampleGpus> | null = null;
  try {
    for (let s = 0; s < steps; s++) {
      if (timed && s === WARMUP) sampler = sampleGpus();
      const t0 = performance.now();
      const sum = await pool.compute([batchFor(s, rows)]);
      const t1 = performance.now();
      const outcome = applyGradientSum(adamw, names, sum, LR, s + 1);
      pool.weightsChanged();
      const t2 = performance.now();
      stepSeconds.push((t2 - t0) / 1000);
      updateSeconds.push((t2 - t1) / 1000);
      losses.push(outcome.loss);
      workerSeconds.push(pool.lastSeconds);
      const inWorkers = pool.lastSeconds.map((w) => `${w.compute.toFixed(2)}+${w.read.toFixed(2)}`).join(', ');
      log(`  ${gpus} GPU(s), ${rows} rows: step ${s + 1} loss ${outcome.loss.toFixed(6)} in ${stepSeconds[s].toFixed(2)} s (workers' gradients+readback ${inWorkers} s; update ${updateSeconds[s].toFixed(2)} s)`);
    }
  } finally {
    await pool.close().catch(() => {});
  }
  const samples = (await sampler?.stop()) ?? [];
  const busiest: Record<string, number> = {};
  for (const sample of samples) for (const g of sample.gpus) busiest[g.bus] = Math.max(busiest[g.bus] ?? 0, g.utilization);
  const apps = samples.flatMap((s) => s.apps).filter((a, j, all) => all.findIndex((b) => b.pid === a.pid && b.bus === a.bus) === j);
  const timedSecs = stepSeconds.slice(WARMUP).reduce((a, b) => a + b, 0);
  const placements = pool.placements;
  adamw.dispose();
  model.dispose();
  return {
    gpus,
    batchPerGpu: rows / gpus,
    seqLen: T,
    losses,
    stepSeconds,
    updateSeconds,
    workerSeconds,
    tokensPerS: timed ? (rows * T * (steps - WARMUP)) / timedSecs : null,
    placements,
    busiest,
    apps,
  };
}

const trainer = await selectBackend('wasm').catch(() => selectBackend('cpu'));
tf.env().set('PROD', true);
log(`trainer process on ${trainer.name}; ${N} worker(s) on ${values['worker-backend']}; GPUs by PCI address: ${pciGpus().join(', ') || 'none found'}`);
log(`model ${quick ? 'quick' : 'reference'} config, B = ${B} per GPU, T = ${T}, ${WARMUP} warm-up + ${STEPS} timed steps`);
const result: Record<string, unknown> = {
  machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, date: new Date().toISOString() },
  trainerBackend: trainer,
  config: quick ? 'quick' : 'REFERENCE_CONFIG',
  gpusFound: pciGpus(),
  lr: LR,
};
const save = () => values.out && writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);

const one = await trainRun(1, B, WARMUP + STEPS, true);
result.one = one;
save();
const many = await trainRun(N, N * B, WARMUP + STEPS, true);
result.many = many;
save();
const whole = await trainRun(1, N * B, WARMUP + STEPS, false);
result.wholeBatchOneGpu = whole;

const efficiency = many.tokensPerS! / (N * one.tokensPerS!);
const lossRelDiff = many.losses.map((l, j) => Math.abs(l - whole.losses[j]) / Math.abs(whole.losses[j]));
result.summary = {
  gpus: N,
  tokensPerSOne: one.tokensPerS,
  tokensPerSMany: many.tokensPerS,
  efficiency,
  lossCurveMany: many.losses,
  lossCurveWholeBatchOneGpu: whole.losses,
  maxLossRelDiff: Math.max(...lossRelDiff),
  targets: { efficiency: 0.8, lossRelDiff: 1e-4 },
};
save();
log(`\n1 GPU, B = ${B}: ${one.tokensPerS!.toFixed(1)} tokens/s; ${N} GPUs, B = ${B} each: ${many.tokensPerS!.toFixed(1)} tokens/s`);
log(`scaling efficiency ${efficiency.toFixed(3)} (target 0.8)`);
log(`loss, ${N} GPUs x ${B}:    ${many.losses.map((l) => l.toFixed(6)).join(' ')}`);
log(`loss, 1 GPU x ${N * B}:    ${whole.losses.map((l) => l.toFixed(6)).join(' ')}`);
log(`max relative difference ${Math.max(...lossRelDiff).toExponential(2)} (target 1e-4)`);
// Pinning checked from outside: nvidia-smi's bus for each worker's pid against the tag it was given.
const placedOn = many.placements.map((p) => many.apps.find((a) => a.pid === p.pid)?.bus ?? null);
const verified = many.placements.map((p, j) => (placedOn[j] && p.gpu ? p.gpu === driPrimeTag(normaliseAddress(placedOn[j]!)) : null));
(result.summary as Record<string, unknown>).placementVerified = verified;
save();
log(`workers: ${many.placements.map((p, j) => `pid ${p.pid} pinned to ${p.gpu ?? 'nothing'}, seen by nvidia-smi on ${placedOn[j] ?? '?'} (${p.detail})`).join('; ')}`);
log(`pinning verified: ${JSON.stringify(verified)}`);
log(`busiest utilization per card, 1-GPU run: ${JSON.stringify(one.busiest)}; ${N}-GPU run: ${JSON.stringify(many.busiest)}`);
process.exit(0);
