/**
 * `npm run bench:train`: training tokens/s of the step as the product runs it (src/train: a
 * StepEngine's gradients, clipping and AdamW) for the reference config
 * (config/llm.yaml's model) at B = 8 and T = 64, 128, 256 on the default backend, with
 * `devices: 1` (the whole step in the trainer process) and `devices: 2` (two data-parallel worker
 * processes, half the batch each, one wasm thread each, each updating half the weights), beside the PyTorch peer
 * (shared/reference/bench_ref.py) run in the same invocation with --threads 1 and --threads 2
 * (OMP_WAIT_POLICY=PASSIVE), keeping its better figure of each. The ratio takes our better device
 * count and says which. CPU time per step counts the trainer and its workers; for devices > 1 the
 * mean seconds per timed step of each phase (the trainer's wait for gradients, reduce and update,
 * and the slowest worker's load, compute, send, reduce and update) are printed too. Prints a table
 * and writes bench/results/train.json. Run it on an idle machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.ts';
import { loadLlmConfig } from '../src/config/index.ts';
import { XlstmModel, type FormName } from '../src/core/index.ts';
import { LocalEngine, optimizerFor, WorkerPool, type StepEngine, type StepPhases } from '../src/train/index.ts';
import { Rng } from '../src/util/rng.ts';
import { machine } from './lib/machine.ts';
import { runPeer, type PeerFigures } from './lib/peer.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/results/train.json' },
    lengths: { type: 'string', default: '64,128,256' },
    batch: { type: 'string', default: '8' },
    devices: { type: 'string', default: '1,2' },
    form: { type: 'string', default: 'parallel' },
    warmup: { type: 'string', default: '1' },
    steps: { type: 'string', default: '3' },
    'skip-peer': { type: 'boolean', default: false },
    one: { type: 'string' },
  },
});
const LENGTHS = values.lengths.split(',').map(Number);
const DEVICES = values.devices.split(',').map(Number);
const B = Number(values.batch);
const WARMUP = Number(values.warmup);
const STEPS = Number(values.steps);
const form = values.form as FormName;

const config = loadLlmConfig('config/llm.yaml');
const backend = await selectBackend(process.env.XLSTM_BACKEND);
if (values.one === undefined) console.log(`xLSTM training on tfjs ${backend.name} (${backend.detail}); config/llm.yaml model, mLSTM ${form} form`);

interface Figure {
  readonly devices: number;
  readonly sPerStep: number;
  /** B * T * steps / seconds, as the peer counts. */
  readonly tokensPerS: number;
  /** CPU time of the trainer and its workers per timed step. */
  readonly cpuMsPerStep: number | null;
  readonly lastLoss: number;
  /** Mean seconds per timed step of each phase (devices > 1). */
  readonly phases: Record<string, number> | null;
}

const TICKS_PER_S = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) of another process from /proc, or null where there is none. */
function processCpuS(pid: number): number | null {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  } catch {
    return null;
  }
}

/** CPU seconds of this process and the engine's other processes, or null when one cannot be read. */
function cpuS(engine: StepEngine): number | null {
  const self = process.cpuUsage();
  let total = (self.user + self.system) / 1e6;
  for (const pid of engine.pids) {
    if (pid === process.pid) continue;
    const s = processCpuS(pid);
    if (s === null) return null;
    total += s;
  }
  return total;
}

/** WARMUP untimed and STEPS timed updates on random tokens through the product's step. */
async function benchLength(T: number, devices: number): Promise<Figure> {
  const base = XlstmModel.init(config.model, 0);
  const model = base.asTrainable();
  base.dispose();
  const adamw = optimizerFor(model, { optimizer: { ...config.optimizer, lr: 1e-4 }, trainer: config.trainer });
  const V = config.model.vocab_size;
  const padId = V - 1;
  const pool = devices > 1 ? await WorkerPool.start({ devices, model, optimizer: adamw, padId, form, backend: backend.name }) : null;
  const engine: StepEngine = pool ?? new LocalEngine(model, adamw, padId, form);
  const rng = new Rng(T);
  let lastLoss = NaN;
  const phases: StepPhases[] = [];
  const one = async (step: number) => {
    const tokens = Int32Array.from({ length: B * (T + 1) }, () => rng.int(V - 1)); // never the pad id
    lastLoss = (await engine.step([{ tokens, batch: B, length: T + 1 }], 1e-4, step)).loss;
    if (pool?.lastPhases && step > WARMUP) phases.push(pool.lastPhases);
  };
  try {
    for (let j = 0; j < WARMUP; j++) await one(j + 1);
    const cpu0 = cpuS(engine);
    const t0 = performance.now();
    for (let j = 0; j < STEPS; j++) await one(WARMUP + j + 1);
    const secs = (performance.now() - t0) / 1000;
    const cpu1 = cpuS(engine);
    const cpuMsPerStep = cpu0 !== null && cpu1 !== null ? (1000 * (cpu1 - cpu0)) / STEPS : null;
    return { devices, sPerStep: secs / STEPS, tokensPerS: (B * T * STEPS) / secs, cpuMsPerStep, lastLoss, phases: meanPhases(phases) };
  } finally {
    await engine.close();
    adamw.dispose();
    model.dispose();
  }
}

/** Mean per step of the trainer's waits and of the slowest worker's share of each phase. */
function meanPhases(steps: readonly StepPhases[]): Record<string, number> | null {
  if (steps.length === 0) return null;
  const mean = (f: (p: StepPhases) => number) => steps.reduce((s, p) => s + f(p), 0) / steps.length;
  const worst = (key: keyof StepPhases['workers'][number]) => mean((p) => Math.max(...p.workers.map((w) => w[key])));
  return {
    wait_gradients: mean((p) => p.gradients),
    wait_reduce: mean((p) => p.reduce),
    wait_update: mean((p) => p.update),
    worker_load: worst('load'),
    worker_compute: worst('compute'),
    worker_send: worst('send'),
    worker_reduce: worst('reduce'),
    worker_update: worst('update'),
  };
}

/**
 * Each figure runs in its own process: a backend that runs out of memory (wasm aborts outright)
 * then costs that figure only, recorded with its error, and the next one starts clean.
 */
function measureApart(T: number, devices: number): Figure | { error: string } {
  const args = ['--one', String(T), '--devices', String(devices), '--batch', String(B), '--form', form, '--warmup', String(WARMUP), '--steps', String(STEPS)];
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 26,
  });
  const line = child.stdout.split('\n').find((l) => l.startsWith('{'));
  if (child.status === 0 && line) return JSON.parse(line) as Figure;
  // The wasm module prints its minified source on a crash: keep the short lines that say why.
  const reasons = child.stderr.split('\n').filter((l) => l.length < 400 && /^(\w*Error|XNN status|Aborted)/.test(l.trim()));
  const reason = reasons.length > 0 ? reasons.join(' / ') : `exit status ${child.status}`;
  return { error: reason.trim().slice(0, 300) };
}

if (values.one !== undefined) {
  // The child: one figure as a JSON line.
  process.stdout.write(`${JSON.stringify(await benchLength(Number(values.one), DEVICES[0]))}\n`);
  process.exit(0);
}

const ours: Record<number, Record<number, Figure | { error: string }>> = {};
for (const T of LENGTHS) {
  ours[T] = {};
  for (const devices of DEVICES) {
    const r = measureApart(T, devices);
    ours[T][devices] = r;
    const what = `train B=${B} T=${T} devices=${devices}`;
    if ('error' in r) console.log(`${what}: failed (${r.error})`);
    else {
      const cpu = r.cpuMsPerStep === null ? '' : `, ${r.cpuMsPerStep.toFixed(0)} CPU ms/step`;
      console.log(`${what}: ${r.sPerStep.toFixed(3)} s/step, ${r.tokensPerS.toFixed(1)} tokens/s${cpu} (loss ${r.lastLoss.toFixed(3)})`);
      if (r.phases) console.log(`  phases (s/step): ${Object.entries(r.phases).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    }
  }
}

let peer: PeerFigures | null = null;
if (!values['skip-peer']) {
  console.log('\nPyTorch peer (shared/reference/bench_ref.py), training only:');
  peer = runPeer(['--decode-batches', '', '--train-batch', String(B), '--train-seq-lens', LENGTHS.join(','), '--train-form', form]);
}

const f = (x: number | null | undefined, digits = 1) => (x === null || x === undefined ? '-' : x.toFixed(digits));
const header = DEVICES.map((n) => `devices=${n}`.padStart(12)).join('');
console.log(`\nfigure (tokens/s)   ${header}   best   peer   ratio`);
const rows = LENGTHS.map((T) => {
  const byDevices = DEVICES.map((n) => {
    const r = ours[T][n];
    return 'error' in r ? null : r.tokensPerS;
  });
  const bestIndex = byDevices.reduce<number>((best, v, j) => (v !== null && (best < 0 || v > (byDevices[best] as number)) ? j : best), -1);
  const best = bestIndex >= 0 ? byDevices[bestIndex] : null;
  const bestDevices = bestIndex >= 0 ? DEVICES[bestIndex] : null;
  const theirs = peer?.train[T] ?? null;
  return {
    figure: `train B=${B} T=${T}`,
    byDevices: Object.fromEntries(DEVICES.map((n, j) => [n, byDevices[j]])),
    best,
    bestDevices,
    peer: theirs,
    ratio: theirs && best ? best / theirs : null,
  };
});
for (const r of rows) {
  const cells = DEVICES.map((n) => f(r.byDevices[n]).padStart(12)).join('');
  const best = r.bestDevices === null ? '-' : `d=${r.bestDevices}`;
  console.log(`${r.figure.padEnd(20)}${cells}${best.padStart(7)}${f(r.peer).padStart(7)}${f(r.ratio, 2).padStart(8)}`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(values.out, `${JSON.stringify({ machine: machine(), backend, form, batch: B, devices: DEVICES, train: ours, peer, rows }, null, 2)}\n`);
console.log(`\nwrote ${values.out}`);
