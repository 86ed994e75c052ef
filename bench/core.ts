/**
 * `npm run bench:core`: decode tokens/s at B = 1, 8, 64 and training tokens/s at B = 8, T = 64 and
 * 128 for the reference config on the default backend, beside the PyTorch peer run in the same
 * invocation at its best thread setting. Prints a table, writes bench/results/core.json.
 * Run it with nothing else on the machine: two jobs on two cores distort both.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { selectBackend } from '../src/backend/select.ts';
import { REFERENCE_CONFIG, XlstmModel } from './lib/core-api.ts';
import { machine } from './lib/machine.ts';
import { runPeer, type PeerFigures } from './lib/peer.ts';
import { benchDecode, benchTrain } from './lib/throughput.ts';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/results/core.json' },
    'skip-peer': { type: 'boolean', default: false },
    'skip-train': { type: 'boolean', default: false },
  },
});
const DECODE_BATCHES = [1, 8, 64];
const TRAIN_LENGTHS = [64, 128];

const backend = await selectBackend(process.env.XLSTM_BACKEND);
console.log(`xLSTM core on tfjs ${backend.name} (${backend.detail}); reference config, 64 blocks`);
const model = XlstmModel.init(REFERENCE_CONFIG, 0);

const decode: Record<number, { msPerStep: number; tokensPerS: number }> = {};
for (const B of DECODE_BATCHES) {
  decode[B] = benchDecode(model, B);
  console.log(`decode B=${B}: ${decode[B].msPerStep.toFixed(2)} ms/step, ${decode[B].tokensPerS.toFixed(1)} tokens/s`);
}
const train: Record<number, { sPerStep: number; tokensPerS: number; lastLoss: number }> = {};
if (!values['skip-train']) {
  for (const T of TRAIN_LENGTHS) {
    train[T] = benchTrain(model, 8, T);
    console.log(`train B=8 T=${T}: ${train[T].sPerStep.toFixed(3)} s/step, ${train[T].tokensPerS.toFixed(1)} tokens/s (loss ${train[T].lastLoss.toFixed(3)})`);
  }
}
model.dispose();

let peer: PeerFigures | null = null;
if (!values['skip-peer']) {
  console.log('\nPyTorch peer (shared/reference/bench_ref.py):');
  peer = runPeer(values['skip-train'] ? ['--skip-train'] : []);
}

const ratio = (ours: number | undefined, theirs: number | undefined) => (ours && theirs ? ours / theirs : null);
console.log('\nfigure            ours tokens/s   peer tokens/s   ratio');
const rows: Record<string, unknown>[] = [];
for (const B of DECODE_BATCHES) rows.push({ figure: `decode B=${B}`, ours: decode[B].tokensPerS, peer: peer?.decode[B] ?? null, ratio: ratio(decode[B].tokensPerS, peer?.decode[B]) });
for (const T of Object.keys(train).map(Number)) rows.push({ figure: `train B=8 T=${T}`, ours: train[T].tokensPerS, peer: peer?.train[T] ?? null, ratio: ratio(train[T].tokensPerS, peer?.train[T]) });
for (const r of rows) {
  const f = (x: unknown, d = 1) => (typeof x === 'number' ? x.toFixed(d) : '-');
  console.log(`${String(r.figure).padEnd(18)}${f(r.ours).padStart(14)}${f(r.peer).padStart(16)}${f(r.ratio, 2).padStart(8)}`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(values.out, `${JSON.stringify({ machine: machine(), backend, decode, train, peer, rows }, null, 2)}\n`);
console.log(`\nwrote ${values.out}`);
