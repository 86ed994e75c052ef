/**
 * `npm run bench:train`: training tokens/s (forward, backward, clipping and AdamW through
 * src/train/step.ts) for the reference config (config/llm.yaml's model) at B = 8 and T = 64, 128,
 * 256 on the default backend, beside the PyTorch peer (shared/reference/bench_ref.py) run in the
 * same invocation with --threads 1 and --threads 2 (OMP_WAIT_POLICY=PASSIVE), keeping its better
 * figure of each. Prints a table and writes bench/results/train.json. Run it on an idle machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.ts';
import { loadLlmConfig } from '../src/config/index.ts';
import { XlstmModel, type FormName } from '../src/core/index.ts';
import { localStep, optimizerFor } from '../src/train/index.ts';
import { Rng } from '../src/util/rng.ts';
import { machine } from './lib/machine.ts';
import { runPeer, type PeerFigures } from './lib/peer.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/results/train.json' },
    lengths: { type: 'string', default: '64,128,256' },
    batch: { type: 'string', default: '8' },
    form: { type: 'string', default: 'parallel' },
    warmup: { type: 'string', default: '1' },
    steps: { type: 'string', default: '3' },
    'skip-peer': { type: 'boolean', default: false },
    one: { type: 'string' },
  },
});
const LENGTHS = values.lengths.split(',').map(Number);
const B = Number(values.batch);
const WARMUP = Number(values.warmup);
const STEPS = Number(values.steps);
const form = values.form as FormName;

const config = loadLlmConfig('config/llm.yaml');
const backend = await selectBackend(process.env.XLSTM_BACKEND);
if (values.one === undefined) console.log(`xLSTM training on tfjs ${backend.name} (${backend.detail}); config/llm.yaml model, mLSTM ${form} form`);

/** One warm-up and STEPS timed updates on random tokens; tokens/s = B * T * steps / seconds, as the peer counts. */
interface Figure {
  readonly sPerStep: number;
  readonly tokensPerS: number;
  readonly lastLoss: number;
}

async function benchLength(T: number): Promise<Figure> {
  const base = XlstmModel.init(config.model, 0);
  const model = base.asTrainable();
  base.dispose();
  const adamw = optimizerFor(model, { optimizer: { ...config.optimizer, lr: 1e-4 }, trainer: config.trainer });
  const rng = new Rng(T);
  const V = config.model.vocab_size;
  let lastLoss = NaN;
  const one = async (step: number) => {
    const tokens = Int32Array.from({ length: B * (T + 1) }, () => rng.int(V - 1)); // never the pad id
    lastLoss = (await localStep(model, adamw, [{ tokens, batch: B, length: T + 1 }], { padId: V - 1, lr: 1e-4, step, form })).loss;
  };
  for (let j = 0; j < WARMUP; j++) await one(j + 1);
  const t0 = performance.now();
  for (let j = 0; j < STEPS; j++) await one(WARMUP + j + 1);
  const secs = (performance.now() - t0) / 1000;
  adamw.dispose();
  model.dispose();
  return { sPerStep: secs / STEPS, tokensPerS: (B * T * STEPS) / secs, lastLoss };
}

/**
 * Each length runs in its own process: a backend that runs out of memory (wasm aborts outright)
 * then costs that figure only, recorded with its error, and the next length starts clean.
 */
function measureApart(T: number): Figure | { error: string } {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--one', String(T), '--batch', String(B), '--form', form, '--warmup', String(WARMUP), '--steps', String(STEPS)], {
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
  process.stdout.write(`${JSON.stringify(await benchLength(Number(values.one)))}\n`);
  process.exit(0);
}

const ours: Record<number, Figure | { error: string }> = {};
for (const T of LENGTHS) {
  const r = measureApart(T);
  ours[T] = r;
  if ('error' in r) console.log(`train B=${B} T=${T}: failed (${r.error})`);
  else console.log(`train B=${B} T=${T}: ${r.sPerStep.toFixed(3)} s/step, ${r.tokensPerS.toFixed(1)} tokens/s (loss ${r.lastLoss.toFixed(3)})`);
}

let peer: PeerFigures | null = null;
if (!values['skip-peer']) {
  console.log('\nPyTorch peer (shared/reference/bench_ref.py), training only:');
  peer = runPeer(['--decode-batches', '', '--train-batch', String(B), '--train-seq-lens', LENGTHS.join(','), '--train-form', form]);
}

console.log('\nfigure              ours tokens/s   peer tokens/s   ratio');
const rows = LENGTHS.map((T) => {
  const theirs = peer?.train[T] ?? null;
  const mine = ours[T];
  const tokensPerS = 'error' in mine ? null : mine.tokensPerS;
  return { figure: `train B=${B} T=${T}`, ours: tokensPerS, peer: theirs, ratio: theirs && tokensPerS ? tokensPerS / theirs : null };
});
for (const r of rows) {
  const f = (x: number | null, d = 1) => (x === null ? '-' : x.toFixed(d));
  console.log(`${r.figure.padEnd(20)}${f(r.ours).padStart(14)}${f(r.peer).padStart(16)}${f(r.ratio, 2).padStart(8)}`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(values.out, `${JSON.stringify({ machine: machine(), backend, form, batch: B, train: ours, peer, rows }, null, 2)}\n`);
console.log(`\nwrote ${values.out}`);
