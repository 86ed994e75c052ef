/**
 * The sLSTM block's training path on the host backends (cpu, wasm) as three differentiable ops: the `in` host
 * kernel (LayerNorm, conv, gate projections), the scan (scan.ts) and the `out` host kernel (GroupNorm, gated GeLU
 * MLP, residual), each with a hand-written backward pass (train-kernels.ts). Built from tfjs ops the block is ~30
 * ops and their gradients, and tfjs copies every tensor an op saves for its backward pass; here the traces are
 * kept as they are (ops/kept-trace.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import { onHostBackend, registerHostKernel } from '../host/io.ts';
import { keepTrace, recording, releaseTrace, type KeptTrace } from '../ops/kept-trace.ts';
import type { SlstmWeights } from '../weights.ts';
import { slstmScanTrain } from './scan.ts';
import {
  inTraceNames, OUT_TRACE_NAMES, slstmInBackward, slstmInForward, slstmOutBackward, slstmOutForward, type SlstmTrainAttrs,
} from './train-kernels.ts';

const IN_FORWARD = 'XlstmSlstmTrainInForward';
const IN_BACKWARD = 'XlstmSlstmTrainInBackward';
const OUT_FORWARD = 'XlstmSlstmTrainOutForward';
const OUT_BACKWARD = 'XlstmSlstmTrainOutBackward';

registerHostKernel(IN_FORWARD, slstmInForward);
registerHostKernel(IN_BACKWARD, slstmInBackward);
registerHostKernel(OUT_FORWARD, slstmOutForward);
registerHostKernel(OUT_BACKWARD, slstmOutBackward);

let enabled = true;

/** Turns the fused training path off (true: on), so that the op-by-op path can be compared with it. */
export function setFusedSlstmTraining(on: boolean): void {
  enabled = on;
}

/** Whether training blocks take the fused ops on the active backend. */
export function fusedSlstmTraining(): boolean {
  return enabled && onHostBackend();
}

interface FusedOp {
  readonly forward: string;
  readonly backward: string;
  /** The op's inputs by name, in order; the backward kernel returns one gradient for each. */
  readonly inputs: readonly string[];
  /** The inputs the backward kernel reads (saved: they are the small ones). */
  readonly saved: readonly string[];
  /** The names under which the backward kernel reads the forward kernel's trace. */
  readonly trace: readonly string[];
}

/** Runs `op`'s forward kernel on `tensors` as one differentiable op whose gradient is its backward kernel. */
function runFused(op: FusedOp, attrs: SlstmTrainAttrs, tensors: tf.Tensor[]): tf.Tensor {
  const taped = recording();
  const f = tf.customGrad((...args) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const named: tf.NamedTensorMap = {};
    op.inputs.forEach((name, j) => (named[name] = inputs[j]));
    const [y, ...outs] = tf.engine().runKernel(op.forward, named, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    let trace: KeptTrace | null = null;
    if (taped) {
      save(op.saved.map((name) => named[name]));
      trace = keepTrace(outs);
    } else tf.dispose(outs);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        if (!trace) throw new Error(`${op.forward}: a backward pass ran for a forward pass that was not recorded`);
        const bwd: tf.NamedTensorMap = { dy };
        op.saved.forEach((name, j) => (bwd[name] = saved[j]));
        op.trace.forEach((name, j) => (bwd[name] = trace.tensors[j]));
        const grads = tf.engine().runKernel(op.backward, bwd, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
        releaseTrace(trace);
        return grads;
      },
    };
  });
  return f(...tensors);
}

/** x [B, T, d] -> x + f(LN(x)) from the zero state, differentiable with respect to x and every weight. */
export function slstmBlockTrain(x: tf.Tensor3D, w: SlstmWeights, dims: Dims): tf.Tensor3D {
  const { nh, dh, P, k } = dims;
  const attrs: SlstmTrainAttrs = { nh, dh, P, k };
  const conv = k > 0 && w.convW && w.convB ? { names: ['convW', 'convB'], tensors: [w.convW, w.convB] } : { names: [], tensors: [] };
  const inOp: FusedOp = {
    forward: IN_FORWARD,
    backward: IN_BACKWARD,
    inputs: ['x', 'normW', 'normB', ...conv.names, 'wC', 'wX', 'bG'],
    saved: ['normW', ...conv.names.slice(0, 1), 'wC', 'wX'],
    trace: inTraceNames(k),
  };
  const gx = runFused(inOp, attrs, [x, w.normW, w.normB, ...conv.tensors, w.wC, w.wX, w.bG]) as tf.Tensor3D;
  const hs = slstmScanTrain(gx, w.R);
  const outOp: FusedOp = {
    forward: OUT_FORWARD,
    backward: OUT_BACKWARD,
    inputs: ['x', 'hs', 'outW', 'outB', 'wUp', 'bUp', 'wDown', 'bDown'],
    saved: ['outW', 'outB', 'wUp', 'bUp', 'wDown'],
    trace: OUT_TRACE_NAMES,
  };
  return runFused(outOp, attrs, [x, hs, w.outW, w.outB, w.wUp, w.bUp, w.wDown, w.bDown]) as tf.Tensor3D;
}
