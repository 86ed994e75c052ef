/**
 * The mLSTM block's training path as ONE differentiable op: a forward kernel and a hand-written
 * backward kernel (train-kernels.ts on cpu and wasm, src/core/gpu/mlstm-train-*.ts on webgpu). Built from tfjs ops the
 * block costs ~500 kernel calls per pass, batched per-head matMuls on wasm's slow path, and a
 * recomputation under a second tape; here it is two kernel calls and the trace they share.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import { onWebgpu } from '../gpu/device.ts';
import { registerMlstmTrainBackwardGpu } from '../gpu/mlstm-train-backward.ts';
import { registerMlstmTrainForwardGpu } from '../gpu/mlstm-train-forward.ts';
import { onHostBackend, registerHostKernel } from '../host/io.ts';
import { keepTrace, recording, releaseTrace, type KeptTrace } from '../ops/kept-trace.ts';
import type { MlstmWeights } from '../weights.ts';
import { mlstmTrainBackward, mlstmTrainForward, traceNames, type MlstmTrainAttrs } from './train-kernels.ts';

const FORWARD = 'XlstmMlstmTrainForward';
const BACKWARD = 'XlstmMlstmTrainBackward';

registerHostKernel(FORWARD, mlstmTrainForward);
registerHostKernel(BACKWARD, mlstmTrainBackward);
// On webgpu the same two kernels are 4 and 5 WGSL dispatches (src/core/gpu/mlstm-train-*.ts).
registerMlstmTrainForwardGpu();
registerMlstmTrainBackwardGpu();

/** The block's weights in the kernels' input order (conv ones only when k > 0). */
const WEIGHT_KEYS = ['normW', 'normB', 'wUp', 'bUp', 'convW', 'convB', 'wC', 'bC', 'wU', 'bU', 'outW', 'outB', 'wDown', 'bDown'] as const;

let enabled = true;

/** Turns the fused training path off (true: on), so that the op-by-op path can be compared with it. */
export function setFusedMlstmTraining(on: boolean): void {
  enabled = on;
}

/** Whether training blocks take the fused op on the active backend. */
export function fusedMlstmTraining(): boolean {
  return enabled && (onHostBackend() || onWebgpu());
}

/** x [B, T, d] -> x + f(LN(x)) from the zero state, differentiable with respect to x and every weight. */
export function mlstmBlockTrain(x: tf.Tensor3D, w: MlstmWeights, dims: Dims): tf.Tensor3D {
  const keys = WEIGHT_KEYS.filter((key) => w[key] !== null);
  const attrs: MlstmTrainAttrs = { nh: dims.nh, dh: dims.dh, dm: dims.dm, k: dims.k };
  const taped = recording();
  const op = tf.customGrad((...args) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const named: tf.NamedTensorMap = { x: inputs[0] };
    keys.forEach((key, j) => {
      named[key] = inputs[j + 1];
    });
    const [y, ...outs] = tf.engine().runKernel(FORWARD, named, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    // The inputs are small and saved (copied); the trace is large and kept as it is.
    let trace: KeptTrace | null = null;
    if (taped) {
      save(inputs);
      trace = keepTrace(outs);
    } else tf.dispose(outs);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        if (!trace) throw new Error('mlstmBlockTrain: a backward pass ran for a forward pass that was not recorded');
        const bwd: tf.NamedTensorMap = { dy, x: saved[0] };
        keys.forEach((key, j) => {
          bwd[key] = saved[j + 1];
        });
        traceNames(dims.k).forEach((name, j) => {
          bwd[name] = trace.tensors[j];
        });
        const grads = tf.engine().runKernel(BACKWARD, bwd, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        releaseTrace(trace);
        return grads;
      },
    };
  });
  return op(x, ...keys.map((key) => w[key] as tf.Tensor)) as tf.Tensor3D;
}
