/** Gradient of Cumsum: the cumulative sum of dy in the opposite direction, with the same exclusivity. */
import * as tf from '@tensorflow/tfjs-core';

export const scanGradients: tf.GradConfig[] = [
  {
    // y_j = sum over i <= j (i < j if exclusive) of x_i, so dx_i = sum over j >= i (j > i) of dy_j.
    kernelName: tf.Cumsum,
    gradFunc: (dy, _saved, attrs) => ({
      x: () => tf.cumsum(dy as tf.Tensor, attrs.axis as number, attrs.exclusive as boolean, !(attrs.reverse as boolean)),
    }),
  },
];
