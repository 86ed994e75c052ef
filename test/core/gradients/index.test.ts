/** The registry: every kernel the core may differentiate through has one of our gradients after start-up. */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { GRADIENT_CONFIGS, GRADIENT_KERNELS } from '../../../src/core/gradients/index.ts';
import { describeOnBackends } from './check.ts';

// The kernels the public ops used by the core dispatch to, by their names in kernel_names.d.ts.
const REQUIRED = [
  'Add', 'AddN', 'Sub', 'Multiply', 'RealDiv', 'Neg', 'Exp', 'Log', 'Log1p', 'Sigmoid', 'Softplus', 'Tanh',
  'Erf', 'Sqrt', 'Rsqrt', 'Square', 'SquaredDifference', 'Abs', 'Maximum', 'Minimum', 'Pow', 'Sum', 'Mean',
  'Max', 'Min', 'Prod', 'BatchMatMul', 'Reshape', 'ExpandDims', 'Transpose', 'Slice', 'StridedSlice', 'Concat',
  'SplitV', 'Pack', 'Unpack', 'GatherV2', 'Cumsum', 'PadV2', 'Tile', 'Cast', 'Select', 'ClipByValue', 'Reverse',
  'ZerosLike', 'OnesLike', 'Identity', 'Softmax', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal',
];

describeOnBackends('gradient registry', () => {
  it('registers exactly our config for every required kernel', () => {
    for (const name of REQUIRED) {
      const ours = GRADIENT_CONFIGS.find((c) => c.kernelName === name);
      expect(ours, name).toBeDefined();
      expect(tf.getGradient(name), name).toBe(ours);
    }
  });

  it('registers each kernel once, under a name the kernel registry knows', () => {
    expect(new Set(GRADIENT_KERNELS).size).toBe(GRADIENT_KERNELS.length);
    const cpu = new Set(tf.getKernelsForBackend('cpu').map((k) => k.kernelName));
    const wasm = new Set(tf.getKernelsForBackend('wasm').map((k) => k.kernelName));
    for (const name of GRADIENT_KERNELS) expect(cpu.has(name) || wasm.has(name), name).toBe(true);
  });
});
