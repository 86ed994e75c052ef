/** Decode and training throughput of our core, measured the way the PyTorch peer measures its own. */
import * as tf from '@tensorflow/tfjs-core';
import { disposeState, keepState, nextTokenLoss, Rng, takesWeightDecay, weightEntries, XlstmModel, type ModelState } from './core-api.ts';
import { AdamW } from '../../src/train/adamw.ts';

/** Greedy decode: warm-up steps, then timed steps; tokens/s = B * steps / seconds. */
export function benchDecode(model: XlstmModel, B: number, warmup = 8, steps = 64): { msPerStep: number; tokensPerS: number } {
  const rng = new Rng(B);
  let ids = tf.tensor1d(Array.from({ length: B }, () => rng.int(model.dims.V)), 'int32');
  let state: ModelState = keepState(tf.tidy(() => model.initState(B)));
  const one = () => {
    const out = tf.tidy(() => {
      const r = model.step(ids, state);
      return { ids: tf.argMax(r.logits, 1) as tf.Tensor1D, state: keepState(r.state) };
    });
    out.ids.dataSync(); // sync: the next step needs the token ids
    disposeState(state);
    ids.dispose();
    state = out.state;
    ids = out.ids;
  };
  for (let j = 0; j < warmup; j++) one();
  const t0 = performance.now();
  for (let j = 0; j < steps; j++) one();
  const secs = (performance.now() - t0) / 1000;
  disposeState(state);
  ids.dispose();
  return { msPerStep: (1000 * secs) / steps, tokensPerS: (B * steps) / secs };
}

/** Forward, backward and AdamW on random tokens: tokens/s = B * T * steps / seconds. */
export function benchTrain(base: XlstmModel, B: number, T: number, warmup = 1, steps = 3): { sPerStep: number; tokensPerS: number; lastLoss: number } {
  const model = base.asTrainable();
  const entries = weightEntries(model.weights);
  const opt = new AdamW(
    entries.map(([name, t]) => ({ name, variable: t as tf.Variable, decay: takesWeightDecay(name, t) })),
    { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.1 },
  );
  const rng = new Rng(T);
  const byVar = new Map(entries.map(([name, t]) => [(t as tf.Variable).name, name]));
  let lastLoss = NaN;
  const one = () => {
    const windows = tf.tensor2d(Array.from({ length: B * (T + 1) }, () => rng.int(base.dims.V)), [B, T + 1], 'int32');
    const { value, grads } = tf.variableGrads(() => nextTokenLoss(model, windows));
    const named = new Map(Object.entries(grads).map(([v, g]) => [byVar.get(v) as string, g]));
    opt.step(named, 1e-4);
    lastLoss = value.dataSync()[0]; // sync: the loss is reported
    value.dispose();
    windows.dispose();
    for (const g of Object.values(grads)) g.dispose();
  };
  for (let j = 0; j < warmup; j++) one();
  const t0 = performance.now();
  for (let j = 0; j < steps; j++) one();
  const secs = (performance.now() - t0) / 1000;
  opt.dispose();
  model.dispose();
  return { sPerStep: secs / steps, tokensPerS: (B * T * steps) / secs, lastLoss };
}
