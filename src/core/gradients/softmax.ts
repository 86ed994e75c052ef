/** Gradient of the Softmax kernel (logSoftmax and logSigmoid carry their own gradients through customGrad). */
import * as tf from '@tensorflow/tfjs-core';

export const softmaxGradients: tf.GradConfig[] = [
  {
    // dx = y * (dy - sum(dy * y)) along the softmax axis, from the saved output alone.
    kernelName: tf.Softmax,
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => ({
      logits: () => {
        const dim = attrs.dim as number;
        const axis = dim < 0 ? dim + y.rank : dim;
        const g = dy as tf.Tensor;
        return tf.mul(y, tf.sub(g, tf.sum(tf.mul(g, y), axis, true)));
      },
    }),
  },
];
