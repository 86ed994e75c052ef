/**
 * Gradient checkpointing for one block: the forward pass keeps only the block's input and
 * weights, and the backward pass recomputes the block under its own tape. Without it every op of
 * every block keeps copies of its inputs for the backward pass (tfjs clones what kernels save),
 * which at B = 8, T = 128 outgrows the wasm backend's 4 GiB heap. Costs one more forward pass.
 */
import * as tf from '@tensorflow/tfjs-core';

/** y = fn(x, weights), differentiable with respect to x and every weight, storing only the inputs. */
export function recomputed(fn: (x: tf.Tensor, weights: tf.Tensor[]) => tf.Tensor, x: tf.Tensor, weights: tf.Tensor[]): tf.Tensor {
  const op = tf.customGrad((...args) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const y = fn(inputs[0], inputs.slice(1));
    save(inputs);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => withOwnTape(() => tf.grads((...ins: tf.Tensor[]) => fn(ins[0], ins.slice(1)))(saved, dy)),
    };
  });
  return op(x, ...weights);
}

interface EngineTapeState {
  state: { activeTape: unknown };
}

/**
 * Runs a nested tf.grads inside a gradient function. tfjs keeps one global tape: a nested
 * gradients() call replaces it and, finishing at depth 0, sets it to null, which breaks the
 * outer backward pass still walking it. The outer tape is put back afterwards.
 */
function withOwnTape<T>(f: () => T): T {
  const engine = tf.engine() as unknown as EngineTapeState;
  const outer = engine.state.activeTape;
  try {
    return f();
  } finally {
    engine.state.activeTape = outer;
  }
}
