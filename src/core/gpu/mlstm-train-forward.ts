/**
 * The mLSTM training block's forward kernel ('XlstmMlstmTrainForward') for the webgpu backend:
 * the inputs, attributes, outputs and trace of the host kernel (../mlstm/train-kernels.ts) in four
 * WGSL dispatches (the block's forward as tfjs ops takes 99 at the reference size):
 *   1. LayerNorm, up projection, split (xhat, rstd1, u, sir, sr)
 *   2. causal conv + silu, the two projections, split (c, sa, q, kk, v, gates, skip, so)
 *   3. the parallel cell with output gate, GroupNorm and gating (ht, hhat, rstd2, and y)
 *   4. the down projection with its bias and the residual (the block's output)
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MlstmTrainAttrs } from '../mlstm/train-kernels.ts';
import { runProgram } from './device.ts';
import { cellProgram } from './mlstm-train-fwd-cell.ts';
import { projectProgram, upProgram } from './mlstm-train-fwd-rows.ts';
import { rowsMatMul } from './rows-matmul.ts';

type Info = tf.TensorInfo;

const FORWARD = 'XlstmMlstmTrainForward';

/** The weight shapes the kernels read, for a clear error instead of garbage from a mismatched block. */
function checkShapes(inp: Record<string, Info>, a: MlstmTrainAttrs): void {
  const [, , d] = inp.x.shape;
  const H = a.nh * a.dh;
  const want: Record<string, number[]> = {
    wUp: [d, a.dm + H],
    wC: [a.dm, 3 * H + 2 * a.nh],
    wU: [a.dm, 2 * H],
    wDown: [H, d],
    ...(a.k > 0 ? { convW: [a.k, a.dm] } : {}),
  };
  for (const [name, shape] of Object.entries(want)) {
    const got = inp[name]?.shape;
    if (!got || got.join(',') !== shape.join(',')) {
      throw new Error(
        `mlstmTrainForwardGpu expected ${name} of shape [${shape}], but got ${got ? `[${got}]` : 'nothing'}. Hint: pass the block's weights with attrs from the same config.`,
      );
    }
  }
}

/**
 * x [B, T, d] and the block's weights -> [y [B, T, d], ...trace in traceNames(k) order], on the
 * webgpu backend. The outputs are new tensor infos owned by the caller (a kernel's outputs).
 */
export function mlstmTrainForwardGpu(inputs: Record<string, Info>, attrs: MlstmTrainAttrs, backend: unknown = tf.backend()): Info[] {
  checkShapes(inputs, attrs);
  const { nh, dh, dm, k } = attrs;
  const [B, T, d] = inputs.x.shape;
  const N = B * T;
  const H = nh * dh;
  const sizes = { d, dm, nh, dh, k };

  const up = upProgram(sizes);
  const [xhat, rstd1, u, sir, sr] = runProgram(
    backend,
    up.program,
    [inputs.x, inputs.normW, inputs.normB, inputs.wUp, inputs.bUp],
    [{ shape: [N, d] }, { shape: [N] }, { shape: [N, dm] }, { shape: [N, H] }, { shape: [N, H] }],
    [N, d, 0, 0],
    [Math.ceil(N / up.rows), 1, 1],
  );

  const proj = projectProgram(sizes);
  const convIn = k > 0 ? [inputs.convW, inputs.convB] : [];
  const convOut = k > 0 ? [{ shape: [N, dm] }, { shape: [N, dm] }] : [];
  const projected = runProgram(
    backend,
    proj.program,
    [u, ...convIn, inputs.wC, inputs.bC, inputs.wU, inputs.bU],
    [...convOut, ...['q', 'kk', 'v'].map(() => ({ shape: [N, H] })), { shape: [N, 2 * nh] }, { shape: [N, H] }, { shape: [N, H] }],
    [N, T, dm, 0],
    [Math.ceil(N / proj.rows), 1, 1],
  );
  const conv = projected.slice(0, convOut.length);
  const [q, kk, v, gates, skip, so] = projected.slice(convOut.length);

  const cell = cellProgram(nh, dh, T);
  const [ht, hhat, rstd2, y] = runProgram(
    backend,
    cell.program,
    [q, kk, v, gates, so, skip, sir, inputs.outW, inputs.outB],
    [{ shape: [N, H] }, { shape: [N, H] }, { shape: [N, nh] }, { shape: [N, H] }],
    [T, 0, 0, 0],
    [Math.ceil(T / cell.tile), B * nh, 1],
  );

  const out = rowsMatMul(backend, y, inputs.wDown, { bias: inputs.bDown, residual: inputs.x, outShape: [B, T, d] });
  // y is rebuilt from the trace by the backward pass; released once the queued commands are submitted.
  (backend as tf.KernelBackend).disposeData(y.dataId);
  return [out, xhat, rstd1, u, ...conv, sir, sr, q, kk, v, gates, skip, so, ht, hhat, rstd2];
}

/** Registers the kernel for the webgpu backend (idempotent); it runs once that backend is active. */
export function registerMlstmTrainForwardGpu(): void {
  if (tf.getKernel(FORWARD, 'webgpu')) return;
  tf.registerKernel({
    kernelName: FORWARD,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) =>
      mlstmTrainForwardGpu(inputs as Record<string, Info>, attrs as unknown as MlstmTrainAttrs, backend),
  });
}
