/**
 * The runtime weight layout: linear weights stored [in, out] (plain matMuls, no transposes on the
 * hot path) and the projections that read the same input packed into one matrix. Converts to and
 * from the checkpoint's named PyTorch-layout tensors (params.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from './config.ts';

/** Packed weights of one mLSTM block. */
export interface MlstmWeights {
  readonly kind: 'm';
  readonly normW: tf.Tensor1D; // [d]
  readonly normB: tf.Tensor1D; // [d]
  /** [up_l | up_r]^T: [d, dm + H] */
  readonly wUp: tf.Tensor2D;
  readonly bUp: tf.Tensor1D; // [dm + H]
  readonly convW: tf.Tensor2D | null; // [k, dm]
  readonly convB: tf.Tensor1D | null; // [dm]
  /** [q | k | igate | fgate | skip]^T: [dm, 3H + 2nh] */
  readonly wC: tf.Tensor2D;
  /** biases of q, k, igate, fgate (skip has none): [2H + 2nh] */
  readonly bC: tf.Tensor1D;
  /** [v | ogate]^T: [dm, 2H] */
  readonly wU: tf.Tensor2D;
  readonly bU: tf.Tensor1D; // [2H]
  readonly outW: tf.Tensor1D; // [H]
  readonly outB: tf.Tensor1D; // [H]
  readonly wDown: tf.Tensor2D; // [H, d]
  readonly bDown: tf.Tensor1D; // [d]
}

/** Packed weights of one sLSTM block. Gate order everywhere: i, f, z, o. */
export interface SlstmWeights {
  readonly kind: 's';
  readonly normW: tf.Tensor1D;
  readonly normB: tf.Tensor1D;
  readonly convW: tf.Tensor2D | null; // [k, d]
  readonly convB: tf.Tensor1D | null; // [d]
  /** [W_i | W_f]^T, read from the convolved input: [d, 2H] */
  readonly wC: tf.Tensor2D;
  /** [W_z | W_o]^T, read from the normed input: [d, 2H] */
  readonly wX: tf.Tensor2D;
  readonly bG: tf.Tensor1D; // [4H]
  /** R_i, R_f, R_z, R_o stacked: [4, nh, dh(out), dh(in)] */
  readonly R: tf.Tensor4D;
  readonly outW: tf.Tensor1D;
  readonly outB: tf.Tensor1D;
  readonly wUp: tf.Tensor2D; // [H, 2P]
  readonly bUp: tf.Tensor1D; // [2P]
  readonly wDown: tf.Tensor2D; // [P, d]
  readonly bDown: tf.Tensor1D; // [d]
}

export type BlockWeights = MlstmWeights | SlstmWeights;

export interface ModelWeights {
  readonly embedding: tf.Tensor2D; // [V, d]
  readonly blocks: readonly BlockWeights[];
  readonly normW: tf.Tensor1D;
  readonly normB: tf.Tensor1D;
  /** The head as [d, V] for a plain matMul; null when tied to the embedding. */
  readonly headT: tf.Tensor2D | null;
}

type Named = ReadonlyMap<string, tf.Tensor>;

function get(named: Named, name: string): tf.Tensor {
  const t = named.get(name);
  if (!t) throw new Error(`weights: tensor ${name} is missing`);
  return t;
}

const t2 = (x: tf.Tensor): tf.Tensor2D => tf.transpose(x as tf.Tensor2D) as tf.Tensor2D;

function packMlstm(named: Named, i: number, dims: Dims): MlstmWeights {
  const p = (n: string) => get(named, `blocks.${i}.${n}`);
  return {
    kind: 'm',
    normW: tf.clone(p('norm.weight')) as tf.Tensor1D,
    normB: tf.clone(p('norm.bias')) as tf.Tensor1D,
    wUp: tf.concat([t2(p('up_l.weight')), t2(p('up_r.weight'))], 1),
    bUp: tf.concat([p('up_l.bias'), p('up_r.bias')]) as tf.Tensor1D,
    convW: dims.k > 0 ? t2(p('conv.weight')) : null,
    convB: dims.k > 0 ? (tf.clone(p('conv.bias')) as tf.Tensor1D) : null,
    wC: tf.concat(['q', 'k', 'igate', 'fgate'].map((n) => t2(p(`${n}.weight`))).concat([t2(p('skip.weight'))]), 1),
    bC: tf.concat(['q', 'k', 'igate', 'fgate'].map((n) => p(`${n}.bias`))) as tf.Tensor1D,
    wU: tf.concat([t2(p('v.weight')), t2(p('ogate.weight'))], 1),
    bU: tf.concat([p('v.bias'), p('ogate.bias')]) as tf.Tensor1D,
    outW: tf.clone(p('outnorm.weight')) as tf.Tensor1D,
    outB: tf.clone(p('outnorm.bias')) as tf.Tensor1D,
    wDown: t2(p('down.weight')),
    bDown: tf.clone(p('down.bias')) as tf.Tensor1D,
  };
}

function packSlstm(named: Named, i: number, dims: Dims): SlstmWeights {
  const p = (n: string) => get(named, `blocks.${i}.${n}`);
  return {
    kind: 's',
    normW: tf.clone(p('norm.weight')) as tf.Tensor1D,
    normB: tf.clone(p('norm.bias')) as tf.Tensor1D,
    convW: dims.k > 0 ? t2(p('conv.weight')) : null,
    convB: dims.k > 0 ? (tf.clone(p('conv.bias')) as tf.Tensor1D) : null,
    wC: tf.concat([t2(p('W_i.weight')), t2(p('W_f.weight'))], 1),
    wX: tf.concat([t2(p('W_z.weight')), t2(p('W_o.weight'))], 1),
    bG: tf.concat(['W_i', 'W_f', 'W_z', 'W_o'].map((n) => p(`${n}.bias`))) as tf.Tensor1D,
    R: tf.stack(['R_i', 'R_f', 'R_z', 'R_o'].map((n) => p(`${n}.weight`))) as tf.Tensor4D,
    outW: tf.clone(p('outnorm.weight')) as tf.Tensor1D,
    outB: tf.clone(p('outnorm.bias')) as tf.Tensor1D,
    wUp: t2(p('up.weight')),
    bUp: tf.clone(p('up.bias')) as tf.Tensor1D,
    wDown: t2(p('down.weight')),
    bDown: tf.clone(p('down.bias')) as tf.Tensor1D,
  };
}

/** Named PyTorch-layout tensors -> packed runtime weights (new tensors; the caller keeps `named`). */
export function packWeights(named: Named, dims: Dims, tied: boolean): ModelWeights {
  return tf.tidy(() => {
    const w: ModelWeights = {
      embedding: tf.clone(get(named, 'embedding.weight')) as tf.Tensor2D,
      blocks: dims.kinds.map((kind, i) => (kind === 'm' ? packMlstm(named, i, dims) : packSlstm(named, i, dims))),
      normW: tf.clone(get(named, 'norm_f.weight')) as tf.Tensor1D,
      normB: tf.clone(get(named, 'norm_f.bias')) as tf.Tensor1D,
      headT: tied ? null : t2(get(named, 'head.weight')),
    };
    return w as unknown as tf.TensorContainer;
  }) as unknown as ModelWeights;
}

/** Every tensor of a weight set with a stable name, in a fixed order (for variables, optimisers, disposal). */
export function weightEntries(w: ModelWeights): [string, tf.Tensor][] {
  const out: [string, tf.Tensor][] = [['embedding', w.embedding]];
  w.blocks.forEach((b, i) => {
    for (const [key, value] of Object.entries(b)) {
      if (value instanceof tf.Tensor) out.push([`blocks.${i}.${key}`, value]);
    }
  });
  out.push(['normW', w.normW], ['normB', w.normB]);
  if (w.headT) out.push(['headT', w.headT]);
  return out;
}

/** Packed runtime weights -> named PyTorch-layout tensors (for checkpoints); head.weight always present. */
export function unpackWeights(w: ModelWeights, dims: Dims): Map<string, tf.Tensor> {
  const { H, nh, dm } = dims;
  // tidy walks plain objects but not Maps: collect into a record, convert after.
  const record = tf.tidy(() => {
    const named: Record<string, tf.Tensor> = {};
    const put = (name: string, t: tf.Tensor) => {
      named[name] = t;
    };
    put('embedding.weight', tf.clone(w.embedding));
    w.blocks.forEach((b, i) => {
      const p = `blocks.${i}`;
      put(`${p}.norm.weight`, tf.clone(b.normW));
      put(`${p}.norm.bias`, tf.clone(b.normB));
      if (b.convW && b.convB) {
        put(`${p}.conv.weight`, t2(b.convW));
        put(`${p}.conv.bias`, tf.clone(b.convB));
      }
      put(`${p}.outnorm.weight`, tf.clone(b.outW));
      put(`${p}.outnorm.bias`, tf.clone(b.outB));
      put(`${p}.down.weight`, t2(b.wDown));
      put(`${p}.down.bias`, tf.clone(b.bDown));
      if (b.kind === 'm') {
        const [upL, upR] = tf.split(b.wUp, [dm, H], 1);
        const [bl, br] = tf.split(b.bUp, [dm, H]);
        put(`${p}.up_l.weight`, t2(upL));
        put(`${p}.up_l.bias`, bl);
        put(`${p}.up_r.weight`, t2(upR));
        put(`${p}.up_r.bias`, br);
        const cw = tf.split(b.wC, [H, H, nh, nh, H], 1);
        const cb = tf.split(b.bC, [H, H, nh, nh]);
        ['q', 'k', 'igate', 'fgate'].forEach((n, j) => {
          put(`${p}.${n}.weight`, t2(cw[j]));
          put(`${p}.${n}.bias`, cb[j]);
        });
        put(`${p}.skip.weight`, t2(cw[4]));
        const [vw, ow] = tf.split(b.wU, [H, H], 1);
        const [vb, ob] = tf.split(b.bU, [H, H]);
        put(`${p}.v.weight`, t2(vw));
        put(`${p}.v.bias`, vb);
        put(`${p}.ogate.weight`, t2(ow));
        put(`${p}.ogate.bias`, ob);
      } else {
        const [wi, wf] = tf.split(b.wC, [H, H], 1);
        const [wz, wo] = tf.split(b.wX, [H, H], 1);
        const bg = tf.split(b.bG, [H, H, H, H]);
        const rs = tf.unstack(b.R);
        [wi, wf, wz, wo].forEach((wt, j) => {
          const g = ['i', 'f', 'z', 'o'][j];
          put(`${p}.W_${g}.weight`, t2(wt));
          put(`${p}.W_${g}.bias`, bg[j]);
          put(`${p}.R_${g}.weight`, rs[j]);
        });
        put(`${p}.up.weight`, t2(b.wUp));
        put(`${p}.up.bias`, tf.clone(b.bUp));
      }
    });
    put('norm_f.weight', tf.clone(w.normW));
    put('norm_f.bias', tf.clone(w.normB));
    put('head.weight', w.headT ? t2(w.headT) : tf.clone(w.embedding));
    return named;
  });
  return new Map(Object.entries(record));
}

/** A weight set with every tensor replaced by f(tensor, name) (e.g. tf.variable for training). */
export function mapWeights(w: ModelWeights, f: (t: tf.Tensor, name: string) => tf.Tensor): ModelWeights {
  const block = (b: BlockWeights, i: number): BlockWeights =>
    Object.fromEntries(
      Object.entries(b).map(([key, value]) => [key, value instanceof tf.Tensor ? f(value, `blocks.${i}.${key}`) : value]),
    ) as unknown as BlockWeights;
  return {
    embedding: f(w.embedding, 'embedding') as tf.Tensor2D,
    blocks: w.blocks.map(block),
    normW: f(w.normW, 'normW') as tf.Tensor1D,
    normB: f(w.normB, 'normB') as tf.Tensor1D,
    headT: w.headT ? (f(w.headT, 'headT') as tf.Tensor2D) : null,
  };
}

/**
 * Whether a packed tensor takes weight decay: matrices do; biases, norm weights and the
 * embedding do not (the R matrices and conv taps are weights and do).
 */
export function takesWeightDecay(name: string, t: tf.Tensor): boolean {
  if (name === 'embedding') return false;
  return t.rank >= 2;
}

/** A block's tensors in a fixed order (its record's key order), for ops that take them as inputs. */
export function blockTensors(b: BlockWeights): tf.Tensor[] {
  return Object.values(b).filter((v): v is tf.Tensor => v instanceof tf.Tensor);
}

/** The same block with its tensors replaced, in blockTensors order. */
export function rebind(b: BlockWeights, tensors: tf.Tensor[]): BlockWeights {
  let j = 0;
  return Object.fromEntries(Object.entries(b).map(([key, v]) => [key, v instanceof tf.Tensor ? tensors[j++] : v])) as unknown as BlockWeights;
}
