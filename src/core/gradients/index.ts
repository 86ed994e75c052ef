/** Registers the gradients of every kernel the core differentiates through (tfjs-core registers none). */
import * as tf from '@tensorflow/tfjs-core';
import { arithmeticGradients } from './arithmetic.ts';
import { gatherGradients } from './gather.ts';
import { joinGradients } from './join.ts';
import { matmulGradients } from './matmul.ts';
import { piecewiseConstantGradients } from './piecewise-constant.ts';
import { reduceGradients } from './reduce.ts';
import { scanGradients } from './scan.ts';
import { selectGradients } from './select.ts';
import { shapeGradients } from './shape.ts';
import { sliceGradients } from './slice.ts';
import { softmaxGradients } from './softmax.ts';
import { unaryGradients } from './unary.ts';

/** Every gradient this module registers, by family. */
export const GRADIENT_CONFIGS: readonly tf.GradConfig[] = [
  ...arithmeticGradients,
  ...unaryGradients,
  ...piecewiseConstantGradients,
  ...reduceGradients,
  ...softmaxGradients,
  ...matmulGradients,
  ...shapeGradients,
  ...sliceGradients,
  ...joinGradients,
  ...gatherGradients,
  ...selectGradients,
  ...scanGradients,
];

/** The kernel names covered, for checks that a model's kernels all have a gradient. */
export const GRADIENT_KERNELS: readonly string[] = GRADIENT_CONFIGS.map((c) => c.kernelName);

// Registering replaces any earlier registration of the same kernel (tfjs warns only in DEBUG mode),
// so importing this module twice is harmless.
for (const config of GRADIENT_CONFIGS) tf.registerGradient(config);
