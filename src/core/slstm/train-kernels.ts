/**
 * The sLSTM block's training passes on the host backends (cpu, wasm) as host kernels on either side of the scan
 * (scan.ts's slstmScanTrain, an op with its own BPTT): `in` is LayerNorm, the causal conv with silu and the gate
 * projections up to the scan's input gx; `out` is GroupNorm, the gated GeLU MLP and the residual. Each forward
 * kernel returns, besides its output, the trace its hand-written backward kernel reads. The matMuls run on the
 * backend's 2-D kernel; LayerNorm, the conv and the residual are the mLSTM's row passes, the rest are
 * train-passes.ts; both sets are generated SIMD kernels on the wasm heap.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { scratch, type HostIO } from '../host/io.ts';
import { blockPasses, layerNormOutput, type BlockPasses, type Rows } from '../mlstm/block-passes.ts';
import { simdBlockPasses } from '../mlstm/block-passes-simd.ts';
import { columnSums, inputGrad, weightGrad } from '../ops/host-linear.ts';
import { simdSlstmPasses } from './train-pass-kernels.ts';
import { slstmPasses, splitGateGrads, type SlstmPasses } from './train-passes.ts';

type Info = tf.TensorInfo;

export interface SlstmTrainAttrs {
  readonly nh: number;
  readonly dh: number;
  readonly P: number;
  readonly k: number;
}

/**
 * The `in` kernel's trace, rows n = b*T + t: xhat [N, d] and rstd [N] (LayerNorm), xn [N, d] (its output, the
 * conv's input and W_z, W_o's), and when k > 0 the conv's output c = silu(a) and sa = sigmoid(a) [N, d].
 */
export function inTraceNames(k: number): string[] {
  return ['xhat', 'rstd', 'xn', ...(k > 0 ? ['c', 'sa'] : [])];
}

/** The `out` kernel's trace: hhat [N, H] and rstd [N, nh] (GroupNorm), up [N, 2P] (the up-projection, before its bias). */
export const OUT_TRACE_NAMES = ['hhat', 'rstd', 'up'];

/**
 * The mLSTM passes' sizes for rows of d channels: LayerNorm over d, and the conv over d channels (dm = d) with no
 * cell columns beside it (nh = 0, H = 0), so that its input gradient fills an [N, d] tensor. The passes read dh
 * only where nh > 0; 4 keeps it a whole vector for the SIMD ones.
 */
function passRows(B: number, T: number, d: number, k: number): Rows {
  return { B, T, d, nh: 0, dh: 4, H: 0, dm: d, k };
}

function passesFor(io: HostIO, R: Rows): BlockPasses {
  return simdBlockPasses(io, R) ?? blockPasses;
}

/** The sLSTM's own passes: generated SIMD where the wasm heap and WebAssembly SIMD allow, else float64 JavaScript. */
function ownPassesFor(io: HostIO, a: SlstmTrainAttrs): SlstmPasses {
  return simdSlstmPasses(io, a) ?? slstmPasses;
}

/** A tensor's data seen as rows of its last dimension: [B, T, w] as [B T, w]. */
function asRows(t: Info): Info {
  const w = t.shape[t.shape.length - 1];
  return { dataId: t.dataId, shape: [t.shape.reduce((a, b) => a * b, 1) / w, w], dtype: t.dtype };
}

/** x [B, T, d] and normW, normB, (convW, convB), wC, wX, bG -> [gx [B, T, 4H], ...trace in inTraceNames order]. */
export function slstmInForward(io: HostIO, inp: Record<string, Info>, a: SlstmTrainAttrs): Info[] {
  const [B, T, d] = inp.x.shape;
  const N = B * T;
  const H = a.nh * a.dh;
  const R = passRows(B, T, d, a.k);
  const P = passesFor(io, R);
  const { tmp, free } = scratch(io);
  const xhat = io.alloc([N, d]);
  const rstd = io.alloc([N]);
  const xn = io.alloc([N, d]);
  P.layerNormForward(io, R, inp.x, inp.normW, inp.normB, xhat, rstd, xn);
  const conv = a.k > 0 ? [io.alloc([N, d]), io.alloc([N, d])] : [];
  if (a.k > 0) P.causalConvSilu(io, R, xn, inp.convW, inp.convB, conv[0], conv[1]);
  const ic = tmp(io.matMul(a.k > 0 ? conv[0] : xn, inp.wC)); // [N, 2H]: i, f
  const zo = tmp(io.matMul(xn, inp.wX)); // [N, 2H]: z, o
  const gx = io.alloc([B, T, 4 * H]);
  ownPassesFor(io, a).gatePreActivations(io, ic, zo, inp.bG, gx);
  free();
  return [gx, xhat, rstd, xn, ...conv];
}

/**
 * dy [B, T, 4H] (the gradient of gx), the trace, normW, (convW), wC, wX -> [dx, then the gradients of normW,
 * normB, (convW, convB when k > 0), wC, wX, bG]. The residual's share of dx is the `out` kernel's.
 */
export function slstmInBackward(io: HostIO, inp: Record<string, Info>, a: SlstmTrainAttrs): Info[] {
  const [B, T] = inp.dy.shape;
  const d = inp.xhat.shape[1];
  const N = B * T;
  const H = a.nh * a.dh;
  const R = passRows(B, T, d, a.k);
  const P = passesFor(io, R);
  const { tmp, free } = scratch(io);
  const dgx = asRows(inp.dy);
  const dbG = columnSums(io, dgx, 0, 4 * H);
  const dic = tmp(io.alloc([N, 2 * H]));
  const dzo = tmp(io.alloc([N, 2 * H]));
  splitGateGrads(io, dgx, dic, dzo);
  const dWC = weightGrad(io, a.k > 0 ? inp.c : inp.xn, dic);
  const dWX = weightGrad(io, inp.xn, dzo);
  const dc = tmp(inputGrad(io, dic, inp.wC)); // [N, d]
  const dxnX = tmp(inputGrad(io, dzo, inp.wX)); // [N, d]: W_z and W_o's share of dxn
  const dxn = tmp(io.alloc([N, d]));
  let conv: Info[] = [];
  if (a.k > 0) {
    conv = [io.alloc([a.k, d]), io.alloc([d])];
    P.causalConvBackward(io, R, dc, inp.c, inp.sa, inp.xn, inp.convW, dxnX, dxn, conv[0], conv[1]);
  } else {
    const s = io.view(dxn), u = io.view(dxnX), v = io.view(dc);
    for (let i = 0; i < N * d; i++) s[i] = u[i] + v[i];
  }
  const noResidual = tmp(io.alloc([N, d]));
  io.view(noResidual).fill(0);
  const dx = io.alloc([B, T, d]);
  const dNormW = io.alloc([d]);
  const dNormB = io.alloc([d]);
  P.layerNormBackward(io, R, dxn, inp.xhat, inp.rstd, inp.normW, noResidual, dx, dNormW, dNormB);
  free();
  return [dx, dNormW, dNormB, ...conv, dWC, dWX, dbG];
}

/** x [B, T, d], hs [B, T, H] and outW, outB, wUp, bUp, wDown, bDown -> [x + f, ...trace in OUT_TRACE_NAMES order]. */
export function slstmOutForward(io: HostIO, inp: Record<string, Info>, a: SlstmTrainAttrs): Info[] {
  const [B, T, d] = inp.x.shape;
  const N = B * T;
  const H = a.nh * a.dh;
  const R = passRows(B, T, d, a.k);
  const P = passesFor(io, R);
  const S = ownPassesFor(io, a);
  const { tmp, free } = scratch(io);
  const hhat = io.alloc([N, H]);
  const rstd = io.alloc([N, a.nh]);
  const yg = tmp(io.alloc([N, H]));
  S.groupNormForward(io, a.nh, inp.hs, inp.outW, inp.outB, hhat, rstd, yg);
  const up = io.matMul(yg, inp.wUp); // [N, 2P]
  const z = tmp(io.alloc([N, a.P]));
  S.geluGateForward(io, up, inp.bUp, z);
  const down = tmp(io.matMul(z, inp.wDown)); // [N, d]
  const y = io.alloc([B, T, d]);
  P.residualOut(io, R, inp.x, down, inp.bDown, y);
  free();
  return [y, hhat, rstd, up];
}

/**
 * dy [B, T, d], the trace, outW, outB, wUp, bUp, wDown -> [dx (the residual's share: dy), dhs, then the gradients of
 * outW, outB, wUp, bUp, wDown, bDown].
 */
export function slstmOutBackward(io: HostIO, inp: Record<string, Info>, a: SlstmTrainAttrs): Info[] {
  const [B, T, d] = inp.dy.shape;
  const N = B * T;
  const H = a.nh * a.dh;
  const S = ownPassesFor(io, a);
  const { tmp, free } = scratch(io);
  const dy = asRows(inp.dy);
  const dx = io.alloc([B, T, d]);
  io.view(dx).set(io.view(inp.dy));
  const dz = tmp(inputGrad(io, dy, inp.wDown)); // [N, P]
  const dup = tmp(io.alloc([N, 2 * a.P]));
  const z = tmp(io.alloc([N, a.P]));
  S.geluGateBackward(io, inp.up, inp.bUp, dz, dup, z);
  const dWDown = weightGrad(io, z, dy);
  const dbDown = columnSums(io, dy, 0, d);
  const dbUp = columnSums(io, dup, 0, 2 * a.P);
  // GroupNorm's output rebuilt from hhat: LayerNorm's affine step over rows of H.
  const yg = tmp(io.alloc([N, H]));
  layerNormOutput(io, { ...passRows(N, 1, H, 0), dm: 0 }, inp.hhat, inp.outW, inp.outB, yg);
  const dWUp = weightGrad(io, yg, dup);
  const dyg = tmp(inputGrad(io, dup, inp.wUp)); // [N, H]
  const dhs = io.alloc([B, T, H]);
  const dOutW = io.alloc([H]);
  const dOutB = io.alloc([H]);
  S.groupNormBackward(io, a.nh, dyg, inp.hhat, inp.rstd, inp.outW, dhs, dOutW, dOutB);
  free();
  return [dx, dhs, dOutW, dOutB, dWUp, dbUp, dWDown, dbDown];
}
