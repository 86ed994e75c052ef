/**
 * The sLSTM training block (DESIGN "sLSTM block", training path from the zero state) as one
 * differentiable op on the webgpu backend: 3 WGSL dispatches forward (LayerNorm + conv + gate
 * projections; the scan of slstm-scan.ts; GroupNorm + gated GeLU MLP + residual) and 5 backward
 * (the MLP and GroupNorm backward; the scan's BPTT; the gate projections, conv and LayerNorm
 * backward; the weight gradients in two passes), where tfjs autodiff of the op-by-op block ran 169
 * (reference size, on the H200). The trace between the passes is kept as plain tensors (packed rows, see layouts()).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dims } from '../config.ts';
import type { SlstmWeights } from '../weights.ts';
import { XlstmError } from '../../util/errors.ts';
import { runProgram } from './device.ts';
import './slstm-scan.ts'; // registers the scan kernels run below
import { partialsProgram, reduceProgram, slstmGradTiling } from './slstm-train-grads.ts';
import { gatesBackwardProgram, outBackwardProgram } from './slstm-train-bwd-rows.ts';
import { gatesProgram, outProgram } from './slstm-train-fwd-rows.ts';
import { layouts, type SlstmSizes } from './slstm-train-rows.ts';

type Info = tf.TensorInfo;

const GATES = 'XlstmSlstmTrainGates';
const OUT = 'XlstmSlstmTrainOut';
const OUT_BACKWARD = 'XlstmSlstmTrainOutBackward';
const GATES_BACKWARD = 'XlstmSlstmTrainGatesBackward';
const WEIGHT_GRADS = 'XlstmSlstmTrainWeightGrads';
/** Registered by slstm-scan.ts. */
const SCAN_TRAIN = 'XlstmGpuSlstmScanTrain';
const SCAN_BACKWARD = 'XlstmGpuSlstmScanBackward';

const rowsOf = (t: Info) => t.shape[0] * t.shape[1];
const groups = (n: number, per: number): [number, number, number] => [Math.ceil(n / per), 1, 1];

function register(kernelName: string, kernelFunc: (inp: Record<string, Info>, s: SlstmSizes, backend: unknown) => Info[]): void {
  if (tf.getKernel(kernelName, 'webgpu')) return;
  tf.registerKernel({
    kernelName,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, attrs, backend }) => kernelFunc(inputs as Record<string, Info>, attrs as unknown as SlstmSizes, backend),
  });
}

register(GATES, (inp, s, backend) => {
  const [B, T] = inp.x.shape;
  const N = B * T;
  const H = s.nh * s.dh;
  const { program, rows } = gatesProgram(s);
  const conv = s.k > 0 ? [inp.convW, inp.convB] : [];
  return runProgram(
    backend,
    program,
    [inp.x, inp.normW, inp.normB, ...conv, inp.wC, inp.wX, inp.bG],
    [{ shape: [N, layouts(s).WA] }, { shape: [N] }, { shape: [B, T, 4 * H] }],
    [N, T, s.d, 2 * H],
    groups(N, rows),
  );
});

register(OUT, (inp, s, backend) => {
  const [B, T] = inp.x.shape;
  const N = B * T;
  const H = s.nh * s.dh;
  const { program, rows } = outProgram(s);
  return runProgram(
    backend,
    program,
    [inp.x, inp.hs, inp.outW, inp.outB, inp.wUp, inp.bUp, inp.wDown, inp.bDown],
    [{ shape: [B, T, s.d] }, { shape: [N, layouts(s).WB] }, { shape: [N, s.nh] }],
    [N, H, s.P, s.d],
    groups(N, rows),
  );
});

register(OUT_BACKWARD, (inp, s, backend) => {
  const [B, T] = inp.dy.shape;
  const N = B * T;
  const H = s.nh * s.dh;
  const { program, rows } = outBackwardProgram(s);
  return runProgram(
    backend,
    program,
    [inp.dy, inp.tB, inp.rstd2, inp.wDown, inp.wUp, inp.outW],
    [{ shape: [N, layouts(s).WDB] }, { shape: [B, T, H] }],
    [N, H, 2 * s.P, s.d],
    groups(N, rows),
  );
});

register(GATES_BACKWARD, (inp, s, backend) => {
  const [B, T] = inp.dy.shape;
  const N = B * T;
  const H = s.nh * s.dh;
  const { program, rows } = gatesBackwardProgram(s);
  return runProgram(
    backend,
    program,
    [inp.dgx, inp.dy, inp.tA, inp.rstd1, inp.normW, ...(s.k > 0 ? [inp.convW] : []), inp.wC, inp.wX],
    [{ shape: [B, T, s.d] }, { shape: [N, layouts(s).WDD] }],
    [N, T, s.d, 2 * H],
    groups(N, rows),
  );
});

/** The weight gradients' shapes, in the op's input order (the conv pair only when k > 0). */
function gradShapes(s: SlstmSizes): number[][] {
  const H = s.nh * s.dh;
  const { d, P, k } = s;
  return [[d], [d], ...(k > 0 ? [[k, d], [d]] : []), [d, 2 * H], [d, 2 * H], [4 * H], [4, s.nh, s.dh, s.dh], [H], [H], [H, 2 * P], [2 * P], [P, d], [d]];
}

register(WEIGHT_GRADS, (inp, s, backend) => {
  const [B, T] = inp.dy.shape;
  const N = B * T;
  const rs = Math.max(1, Math.floor(slstmGradTiling.rowsPerSlice));
  const S = Math.ceil(N / rs);
  const first = partialsProgram(s);
  const [partials] = runProgram(
    backend,
    first.program,
    [inp.tA, inp.tB, inp.dB, inp.dD, inp.dy, inp.dgx, inp.hs],
    [{ shape: [S, first.total] }],
    [N, T, rs, first.total],
    [Math.ceil(first.total / first.threads), S, 1],
  );
  const second = reduceProgram(s);
  const grads = runProgram(
    backend,
    second.program,
    [partials],
    gradShapes(s).map((shape) => ({ shape })),
    [S, first.total],
    groups(first.total, first.threads),
  );
  // Released once the queued commands are submitted.
  (backend as tf.KernelBackend).disposeData(partials.dataId);
  return grads;
});

const run = (name: string, inputs: Record<string, tf.Tensor>, s?: SlstmSizes) =>
  tf.engine().runKernel(name, inputs as tf.NamedTensorMap, s as unknown as tf.NamedAttrMap) as tf.Tensor[];

/**
 * The op over [x, normW, normB, (convW, convB), wC, wX, bG, R, outW, outB, wUp, bUp, wDown, bDown]:
 * the sizes are read from the shapes, the conv pair from the argument count.
 */
const trainOp = tf.customGrad((...args) => {
  const save = args[args.length - 1] as tf.GradSaveFunc;
  const ts = args.slice(0, -1) as tf.Tensor[];
  const hasConv = ts.length === 15;
  const [x, normW, normB] = ts;
  const [convW, convB] = hasConv ? ts.slice(3, 5) : [];
  const [wC, wX, bG, R, outW, outB, wUp, bUp, wDown, bDown] = ts.slice(hasConv ? 5 : 3);
  const s: SlstmSizes = {
    d: x.shape[2]!,
    nh: R.shape[1]!,
    dh: R.shape[2]!,
    P: wDown.shape[0],
    k: hasConv ? convW.shape[0] : 0,
  };
  const conv: Record<string, tf.Tensor> = hasConv ? { convW, convB } : {};
  const [tA, rstd1, gx] = run(GATES, { x, normW, normB, ...conv, wC, wX, bG }, s);
  const [hs, pre, cs, ns, ms] = run(SCAN_TRAIN, { gx, R });
  const [y, tB, rstd2] = run(OUT, { x, hs, outW, outB, wUp, bUp, wDown, bDown }, s);
  save([normW, ...(hasConv ? [convW] : []), wC, wX, R, outW, wUp, wDown, tA, rstd1, hs, pre, cs, ns, ms, tB, rstd2]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sNormW, ...more] = saved;
      const sConv: Record<string, tf.Tensor> = hasConv ? { convW: more.shift()! } : {};
      const [sWC, sWX, sR, sOutW, sWUp, sWDown, sTA, sRstd1, sHs, sPre, sCs, sNs, sMs, sTB, sRstd2] = more;
      const [dB, dhs] = run(OUT_BACKWARD, { dy, tB: sTB, rstd2: sRstd2, wDown: sWDown, wUp: sWUp, outW: sOutW }, s);
      const [dgx] = run(SCAN_BACKWARD, {
        dy: dhs,
        R: sR,
        pre: sPre,
        cs: sCs,
        ns: sNs,
        ms: sMs,
      });
      const [dx, dD] = run(
        GATES_BACKWARD,
        {
          dgx,
          dy,
          tA: sTA,
          rstd1: sRstd1,
          normW: sNormW,
          ...sConv,
          wC: sWC,
          wX: sWX,
        },
        s,
      );
      const grads = run(WEIGHT_GRADS, { tA: sTA, tB: sTB, dB, dD, dy, dgx, hs: sHs }, s);
      return [dx, ...grads];
    },
  };
});

/** Checks every weight against dims, so that a mismatched block fails here instead of reading garbage. */
function checkShapes(x: tf.Tensor3D, w: SlstmWeights, dims: Dims): void {
  const { d, nh, dh, H, P, k } = dims;
  const want: [string, tf.Tensor | null, number[]][] = [
    ['x', x, [x.shape[0], x.shape[1], d]],
    ['normW', w.normW, [d]],
    ['normB', w.normB, [d]],
    ...(k > 0
      ? ([
          ['convW', w.convW, [k, d]],
          ['convB', w.convB, [d]],
        ] as [string, tf.Tensor | null, number[]][])
      : []),
    ['wC', w.wC, [d, 2 * H]],
    ['wX', w.wX, [d, 2 * H]],
    ['bG', w.bG, [4 * H]],
    ['R', w.R, [4, nh, dh, dh]],
    ['outW', w.outW, [H]],
    ['outB', w.outB, [H]],
    ['wUp', w.wUp, [H, 2 * P]],
    ['bUp', w.bUp, [2 * P]],
    ['wDown', w.wDown, [P, d]],
    ['bDown', w.bDown, [d]],
  ];
  for (const [name, t, shape] of want) {
    if (!t || t.shape.join(',') !== shape.join(',')) {
      throw new XlstmError(
        'INVALID_INPUT',
        `slstmBlockTrainGpu expected ${name} of shape [${shape}], but got ${t ? `[${t.shape}]` : 'nothing'}. Hint: pass the block's weights with dims from the same config.`,
      );
    }
  }
}

/**
 * x [B, T, d] -> x + f(LN(x)) from the zero state on the webgpu backend, differentiable w.r.t. x
 * and every weight: the same value and gradients as slstmBlock(x, w, dims, null, false).
 */
export function slstmBlockTrainGpu(x: tf.Tensor3D, w: SlstmWeights, dims: Dims): tf.Tensor3D {
  if (tf.getBackend() !== 'webgpu') {
    throw new XlstmError('BACKEND', `slstmBlockTrainGpu expected the webgpu backend, but got ${tf.getBackend()}. Hint: use slstmBlock on the host backends.`);
  }
  checkShapes(x, w, dims);
  const conv = dims.k > 0 ? [w.convW!, w.convB!] : [];
  return trainOp(x, w.normW, w.normB, ...conv, w.wC, w.wX, w.bG, w.R, w.outW, w.outB, w.wUp, w.bUp, w.wDown, w.bDown) as tf.Tensor3D;
}
