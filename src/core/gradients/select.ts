/** Gradients of the masking kernels Select (tf.where) and ClipByValue: dy passes where the input was chosen. */
import * as tf from '@tensorflow/tfjs-core';
import { zerosFor } from './util.ts';

type T = tf.Tensor;

export const selectGradients: tf.GradConfig[] = [
  {
    // tf.where broadcasts condition, t and e to one shape before the kernel, so all match dy.
    kernelName: tf.Select,
    inputsToSave: ['condition'],
    gradFunc: (dy, [condition]) => {
      const g = dy as T;
      return {
        condition: () => zerosFor(condition),
        t: () => tf.where(condition, g, tf.zerosLike(g)),
        e: () => tf.where(condition, tf.zerosLike(g), g),
      };
    },
  },
  {
    // Inside [min, max] (bounds included) the clip is the identity; outside it is constant.
    kernelName: tf.ClipByValue,
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({
      x: () => {
        const inside = tf.logicalAnd(
          tf.greaterEqual(x, attrs.clipValueMin as number),
          tf.lessEqual(x, attrs.clipValueMax as number),
        );
        const g = dy as T;
        return tf.where(inside, g, tf.zerosLike(g));
      },
    }),
  },
];
