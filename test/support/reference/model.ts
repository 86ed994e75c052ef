/**
 * The whole reference model in float64: embedding -> blocks -> final LayerNorm -> head, over a
 * sequence or one token at a time, plus the training loss and DESIGN's initialisation.
 */
import { deriveDims, type Dims, type ModelConfig } from '../../../src/core/config.ts';
import { modelParams } from '../../../src/core/params.ts';
import { Rng } from '../../../src/util/rng.ts';
import { mlstmForward, mlstmInitState, mlstmStep, type CellForm, type MlstmState } from './mlstm.ts';
import { layerNorm, linear } from './ops.ts';
import { slstmForward, slstmInitState, slstmStep, type SlstmState } from './slstm.ts';
import { checkParams, need, type RefParams } from './weights.ts';

/** The mLSTM's form; sLSTM blocks are recurrent in both. */
export type RefForm = CellForm;

/** One entry per block, in block order. */
export type RefBlockState = ({ readonly kind: 'm' } & MlstmState) | ({ readonly kind: 's' } & SlstmState);
export type RefState = readonly RefBlockState[];

function embed(dims: Dims, params: RefParams, token: number): Float64Array {
  if (!Number.isInteger(token) || token < 0 || token >= dims.V) {
    throw new Error(`reference token id expected an integer in [0, ${dims.V}), but got ${token}.`);
  }
  return need(params, 'embedding.weight').slice(token * dims.d, (token + 1) * dims.d);
}

/** logits = head(LN_f(x)); a tied model reads the embedding matrix as its head. */
function headLogits(config: ModelConfig, dims: Dims, params: RefParams, x: Float64Array): Float64Array {
  const xn = layerNorm(x, need(params, 'norm_f.weight'), need(params, 'norm_f.bias'));
  const head = config.tie_weights ? need(params, 'embedding.weight') : need(params, 'head.weight');
  return linear(xn, head, null, dims.V);
}

/** Logits [T][V] for one sequence of token ids, every block starting from its initial state. */
export function refForward(config: ModelConfig, params: RefParams, tokens: readonly number[], form: RefForm): Float64Array[] {
  const dims = deriveDims(config);
  checkParams(config, dims, params);
  let xs = tokens.map((t) => embed(dims, params, t));
  dims.kinds.forEach((kind, i) => {
    xs = kind === 'm' ? mlstmForward(dims, params, i, xs, form) : slstmForward(dims, params, i, xs);
  });
  return xs.map((x) => headLogits(config, dims, params, x));
}

export function refInitState(config: ModelConfig): RefState {
  const dims = deriveDims(config);
  return dims.kinds.map((kind): RefBlockState =>
    kind === 'm' ? { kind: 'm', ...mlstmInitState(dims) } : { kind: 's', ...slstmInitState(dims) },
  );
}

/** One token through every block's step: logits [V] and the next state (the given state is untouched). */
export function refStep(config: ModelConfig, params: RefParams, token: number, state: RefState): { logits: Float64Array; state: RefState } {
  const dims = deriveDims(config);
  checkParams(config, dims, params);
  if (state.length !== dims.kinds.length) throw new Error(`reference state expected ${dims.kinds.length} blocks, but got ${state.length}.`);
  let x = embed(dims, params, token);
  const next = state.map((block, i): RefBlockState => {
    if (block.kind !== dims.kinds[i]) throw new Error(`reference state of block ${i} expected kind ${dims.kinds[i]}, but got ${block.kind}.`);
    if (block.kind === 'm') {
      const s = mlstmStep(dims, params, i, x, block);
      x = s.y;
      return { kind: 'm', ...s.state };
    }
    const s = slstmStep(dims, params, i, x, block);
    x = s.y;
    return { kind: 's', ...s.state };
  });
  return { logits: headLogits(config, dims, params, x), state: next };
}

/** -log softmax(logits)[target], with the maximum subtracted before exp. */
export function crossEntropy(logits: Float64Array, target: number): number {
  if (!Number.isInteger(target) || target < 0 || target >= logits.length) {
    throw new Error(`reference target id expected an integer in [0, ${logits.length}), but got ${target}.`);
  }
  let max = -Infinity;
  for (const z of logits) max = Math.max(max, z);
  let sum = 0;
  for (const z of logits) sum += Math.exp(z - max);
  return max + Math.log(sum) - logits[target];
}

/**
 * Mean next-token cross-entropy over a batch: targets[b][t] is the id that should follow
 * tokens[b][0..t]; positions with mask[b][t] = 0 are left out, and the mean is over every counted
 * position of every sequence (token-weighted, not per sequence). Logits from the parallel form.
 */
export function refLoss(
  config: ModelConfig,
  params: RefParams,
  tokens: readonly number[][],
  targets: readonly number[][],
  mask?: readonly number[][],
): number {
  let total = 0;
  let count = 0;
  tokens.forEach((seq, b) => {
    if (targets[b]?.length !== seq.length) {
      throw new Error(`reference targets[${b}] expected ${seq.length} ids, but got ${targets[b]?.length}.`);
    }
    if (mask && mask[b]?.length !== seq.length) {
      throw new Error(`reference mask[${b}] expected ${seq.length} entries, but got ${mask[b]?.length}.`);
    }
    const logits = refForward(config, params, seq, 'parallel');
    logits.forEach((row, t) => {
      if (mask && mask[b][t] === 0) return;
      total += crossEntropy(row, targets[b][t]);
      count += 1;
    });
  });
  if (count === 0) throw new Error('reference loss expected at least one unmasked position, but got none.');
  return total / count;
}

/**
 * Fresh parameters per the Init of every entry of modelParams (src/core/params.ts): one Rng(seed),
 * tensors in modelParams order, values in row-major order, normal() * std for 'normal' (zeros, ones
 * and linspace draw nothing). A tied model's head.weight is a copy of embedding.weight.
 */
export function refInit(config: ModelConfig, seed: number): Map<string, Float64Array> {
  const dims = deriveDims(config);
  const rng = new Rng(seed);
  const params = new Map<string, Float64Array>();
  for (const spec of modelParams(dims)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const t = new Float64Array(size);
    const init = spec.init;
    switch (init.kind) {
      case 'normal':
        for (let i = 0; i < size; i++) t[i] = rng.normal() * init.std;
        break;
      case 'zeros':
        break;
      case 'ones':
        t.fill(1);
        break;
      case 'linspace':
        for (let i = 0; i < size; i++) t[i] = size === 1 ? init.from : init.from + ((init.to - init.from) * i) / (size - 1);
        break;
    }
    params.set(spec.name, t);
  }
  if (config.tie_weights) params.set('head.weight', Float64Array.from(need(params, 'embedding.weight')));
  return params;
}
