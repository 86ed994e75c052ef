/**
 * Greedy decode tokens/s of the reference config through a DecodePool (worker threads, each with its own wasm
 * backend) beside two in-process loops on one thread: model.step with argmax on the device (benchDecode, as in
 * bench/core.ts) and model.step with host sampling (sampleRow per row, what the in-process decoder does).
 * 8 warm-up + 64 timed steps each. Prints a table, writes bench/results/decode-pool.json.
 * Figures are only as quiet as the machine: other jobs on the cores distort them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.ts';
import { DecodePool } from '../src/serve/decode-pool.ts';
import { sampleRow } from '../src/serve/sample-row.ts';
import { disposeState, GREEDY, keepState, REFERENCE_CONFIG, Rng, XlstmModel, type ModelState } from './lib/core-api.ts';
import { machine } from './lib/machine.ts';
import { benchPoolDecode, measureSteps, type DecodeFigure } from './lib/pool-throughput.ts';
import { benchDecode } from './lib/throughput.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/results/decode-pool.json' },
    batches: { type: 'string', default: '1,8,64' },
    threads: { type: 'string', default: '1,2' },
  },
});
const BATCHES = values.batches.split(',').map(Number);
const THREADS = values.threads.split(',').map(Number);
const WARMUP = 8;
const STEPS = 64;

type Figure = DecodeFigure;

const measure = (one: () => unknown, B: number): Promise<Figure> => measureSteps(one, B, WARMUP, STEPS);

/** benchDecode (bench/lib) with the CPU time of its warm-up and timed steps together. */
function benchArgmax(model: XlstmModel, B: number): Figure {
  const cpu0 = process.cpuUsage();
  const wall = benchDecode(model, B, WARMUP, STEPS);
  const cpu = process.cpuUsage(cpu0);
  return { ...wall, cpuMsPerStep: (cpu.user + cpu.system) / 1000 / (WARMUP + STEPS) };
}

/** Greedy with host sampling: the batch's logits are read back and sampled row by row, as the in-process decoder does. */
async function benchHostSampling(model: XlstmModel, B: number): Promise<Figure> {
  const rng = new Rng(B);
  let tokens = Int32Array.from({ length: B }, () => rng.int(model.dims.V));
  let state: ModelState = keepState(tf.tidy(() => model.initState(B)));
  const V = model.dims.V;
  const one = () => {
    const out = tf.tidy(() => {
      const r = model.step(tf.tensor1d(tokens, 'int32'), state);
      return { logits: r.logits, state: keepState(r.state) };
    });
    const logits = out.logits.dataSync() as Float32Array; // sync: the batch's logits [B, V]
    out.logits.dispose();
    disposeState(state);
    state = out.state;
    tokens = Int32Array.from({ length: B }, (_, i) => sampleRow(logits.subarray(i * V, (i + 1) * V), GREEDY, rng.uniform(), null).id);
  };
  const figure = await measure(one, B);
  disposeState(state);
  return figure;
}

const backend = await selectBackend('wasm');
const loadBefore = os.loadavg();
console.log(`decode pool vs in-process, tfjs ${backend.name}; reference config; ${os.availableParallelism()} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
const model = XlstmModel.init(REFERENCE_CONFIG, 0);
const arrays = model.toArrays();

const inProcess: Record<number, { argmax: Figure; hostSampling: Figure }> = {};
for (const B of BATCHES) {
  inProcess[B] = { argmax: benchArgmax(model, B), hostSampling: await benchHostSampling(model, B) };
  const { argmax, hostSampling } = inProcess[B];
  console.log(
    `in-process B=${B}: argmax ${argmax.tokensPerS.toFixed(1)} tokens/s (cpu ${argmax.cpuMsPerStep.toFixed(1)} ms/step), ` +
      `host sampling ${hostSampling.tokensPerS.toFixed(1)} tokens/s (cpu ${hostSampling.cpuMsPerStep.toFixed(1)} ms/step)`,
  );
}
model.dispose();

const pool: Record<number, Record<number, Figure>> = {};
for (const threads of THREADS) {
  const started = performance.now();
  const p = await DecodePool.create({ config: REFERENCE_CONFIG, arrays, threads });
  console.log(`pool of ${threads}: ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  pool[threads] = {};
  try {
    for (const B of BATCHES) {
      pool[threads][B] = await benchPoolDecode(p, REFERENCE_CONFIG.vocab_size, B, WARMUP, STEPS);
      const f = pool[threads][B];
      console.log(`pool threads=${threads} B=${B}: ${f.msPerStep.toFixed(2)} ms/step, ${f.tokensPerS.toFixed(1)} tokens/s (cpu ${f.cpuMsPerStep.toFixed(1)} ms/step)`);
    }
  } finally {
    await p.close();
  }
}

for (const [what, f] of [
  ['tokens/s (wall)', (x: Figure) => x.tokensPerS.toFixed(1)],
  ['CPU ms per step (all threads)', (x: Figure) => x.cpuMsPerStep.toFixed(1)],
] as const) {
  console.log(`\n${what}\n${'B'.padStart(4)}${'in-process argmax'.padStart(20)}${'in-process sampled'.padStart(20)}${THREADS.map((t) => `pool x${t}`.padStart(12)).join('')}`);
  for (const B of BATCHES) {
    console.log(`${String(B).padStart(4)}${f(inProcess[B].argmax).padStart(20)}${f(inProcess[B].hostSampling).padStart(20)}${THREADS.map((t) => f(pool[t][B]).padStart(12)).join('')}`);
  }
}
mkdirSync('bench/results', { recursive: true });
const note = 'Shared machine: other jobs used the cores during the run, so figures are noisy (load averages recorded).';
writeFileSync(
  values.out,
  `${JSON.stringify({ machine: machine(), backend, config: 'REFERENCE_CONFIG', warmup: WARMUP, steps: STEPS, sampling: 'greedy', loadBefore, loadAfter: os.loadavg(), note, inProcess, pool }, null, 2)}\n`,
);
console.log(`\nwrote ${values.out}`);
