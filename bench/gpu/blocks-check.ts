/**
 * The fused training blocks on the device at a full step's size against the cpu backend: value and every
 * gradient of one mLSTM and one sLSTM block of the reference config at B x T rows. CI checks the kernels on
 * llvmpipe at small sizes only; on the H200 a miscompile showed only from B = 32 (docs/GPU.md), so the campaign
 * checks the size it trains at, and twice that.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backend/select.ts';
import { deriveDims, REFERENCE_CONFIG, XlstmModel, type Dims } from '../../src/core/index.ts';
import { mlstmBlockTrain } from '../../src/core/mlstm/train-block.ts';
import { slstmBlock } from '../../src/core/slstm/block.ts';
import type { MlstmWeights, SlstmWeights } from '../../src/core/weights.ts';
import { Rng } from '../../src/util/rng.ts';
import { maxRelDiff } from '../../test/support/rel-diff.ts';

type Arrays = [string, { shape: number[]; data: Float32Array }][];

/** sum(block(x) * dy) and its gradients w.r.t. x and every weight of the block, read back. */
async function gradients(kind: 'm' | 's', weights: Arrays, x: Float32Array, dy: Float32Array, dims: Dims, B: number, T: number): Promise<Float32Array[]> {
  const w = Object.fromEntries(weights.map(([k, a]) => [k, tf.tensor(a.data, a.shape)]));
  const keys = weights.map(([k]) => k);
  const f = (xi: tf.Tensor, ...ws: tf.Tensor[]) => {
    const block = { kind, ...Object.fromEntries(keys.map((k, j) => [k, ws[j]])) };
    const y = kind === 'm' ? mlstmBlockTrain(xi as tf.Tensor3D, block as unknown as MlstmWeights, dims) : slstmBlock(xi as tf.Tensor3D, block as unknown as SlstmWeights, dims, null, false).y;
    return tf.sum(tf.mul(y, tf.tensor3d(dy, [B, T, dims.d])));
  };
  const grads = tf.grads(f)([tf.tensor3d(x, [B, T, dims.d]), ...keys.map((k) => w[k])]);
  const out = await Promise.all(grads.map(async (g) => (await g.data()) as Float32Array));
  tf.dispose([...grads, ...Object.values(w)]);
  return out;
}

/**
 * The largest relative difference between webgpu and cpu over x's and every weight's gradient, per block kind.
 * Leaves webgpu selected.
 */
export async function blocksCheck(B: number, T: number): Promise<{ mlstm: number; slstm: number }> {
  const dims = deriveDims(REFERENCE_CONFIG);
  await selectBackend('cpu');
  const init = XlstmModel.init(REFERENCE_CONFIG, 0);
  const weightsOf = (i: number): Arrays =>
    Object.entries(init.weights.blocks[i])
      .filter((e): e is [string, tf.Tensor] => e[1] instanceof tf.Tensor)
      .map(([k, t]) => [k, { shape: t.shape, data: (t.dataSync() as Float32Array).slice() }]);
  const blocks = { m: weightsOf(dims.kinds.indexOf('m')), s: weightsOf(dims.kinds.indexOf('s')) };
  init.dispose();
  const rng = new Rng(B * T);
  const x = Float32Array.from({ length: B * T * dims.d }, () => rng.normal());
  const dy = Float32Array.from({ length: B * T * dims.d }, () => rng.normal());
  const worst: Record<'m' | 's', number> = { m: 0, s: 0 };
  const want = { m: await gradients('m', blocks.m, x, dy, dims, B, T), s: await gradients('s', blocks.s, x, dy, dims, B, T) };
  await selectBackend('webgpu');
  for (const kind of ['m', 's'] as const) {
    const got = await gradients(kind, blocks[kind], x, dy, dims, B, T);
    worst[kind] = Math.max(...got.map((g, j) => maxRelDiff(g, want[kind][j])));
  }
  return { mlstm: worst.m, slstm: worst.s };
}
