/**
 * The mLSTM block's training forward and backward passes as two host kernels (cpu, wasm): the
 * block of mlstm/block.ts from the zero state, parallel form, with hand-written gradients. The
 * matMuls run on the backend's 2-D kernel; LayerNorm, conv, gates, GroupNorm and gating run as
 * passes over the rows: generated float32 SIMD kernels over the wasm heap (block-passes-simd.ts),
 * else float64 JavaScript (block-passes.ts). The forward pass returns, besides y, the trace
 * the backward pass reads (traceNames), so the backward pass recomputes only the cell's [T, T]
 * products and evaluates no activation function.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { scratch, type HostIO } from '../host/io.ts';
import { columnSums, inputGrad, weightGrad } from '../ops/host-linear.ts';
import { blockPasses, type BlockPasses, type Rows } from './block-passes.ts';
import { simdBlockPasses } from './block-passes-simd.ts';
import { cellBackward, cellForward } from './host-cell.ts';

type Info = tf.TensorInfo;

export interface MlstmTrainAttrs {
  readonly nh: number;
  readonly dh: number;
  readonly dm: number;
  readonly k: number;
}

/**
 * The forward pass's saved activations, rows n = b*T + t: xhat [N, d] and rstd1 [N] (LayerNorm),
 * u [N, dm] (up_l with bias), c and sa [N, dm] (conv output silu(a) and sigmoid(a); absent when
 * k = 0, where c = u), sir = silu(r) and sr = sigmoid(r) [N, H], q, kk (scaled key), v [N, H],
 * gates [N, 2nh] (input gates, then forget gates), skip [N, H], so = sigmoid(ogate) [N, H],
 * ht [N, H] (the cell's h~), hhat [N, H] and rstd2 [N, nh] (GroupNorm).
 */
export function traceNames(k: number): string[] {
  const conv = k > 0 ? ['c', 'sa'] : [];
  return ['xhat', 'rstd1', 'u', ...conv, 'sir', 'sr', 'q', 'kk', 'v', 'gates', 'skip', 'so', 'ht', 'hhat', 'rstd2'];
}

function rowsOf(x: Info, a: MlstmTrainAttrs): Rows {
  const [B, T, d] = x.shape;
  return { B, T, d, nh: a.nh, dh: a.dh, H: a.nh * a.dh, dm: a.dm, k: a.k };
}

/** The generated SIMD passes where the wasm heap and WebAssembly SIMD allow, else the float64 JavaScript ones. */
function passesFor(io: HostIO, R: Rows): BlockPasses {
  return simdBlockPasses(io, R) ?? blockPasses;
}

/** x [B, T, d] and the block's weights -> [y, ...trace in traceNames order]. */
export function mlstmTrainForward(io: HostIO, inp: Record<string, Info>, a: MlstmTrainAttrs): Info[] {
  const R = rowsOf(inp.x, a);
  const { B, T, d, nh, dh, H, dm, k } = R;
  const N = B * T;
  const P = passesFor(io, R);
  const { tmp, free } = scratch(io);
  const out: Record<string, Info> = {};
  const alloc = (name: string, shape: number[]) => (out[name] = io.alloc(shape));

  const xn = tmp(io.alloc([N, d]));
  P.layerNormForward(io, R, inp.x, inp.normW, inp.normB, alloc('xhat', [N, d]), alloc('rstd1', [N]), xn);
  const up = tmp(io.matMul(xn, inp.wUp)); // [N, dm + H]
  P.splitUp(io, R, up, inp.bUp, alloc('u', [N, dm]), alloc('sir', [N, H]), alloc('sr', [N, H]));
  if (k > 0) P.causalConvSilu(io, R, out.u, inp.convW, inp.convB, alloc('c', [N, dm]), alloc('sa', [N, dm]));
  const cc = tmp(io.matMul(k > 0 ? out.c : out.u, inp.wC)); // [N, 3H + 2nh]
  const uu = tmp(io.matMul(out.u, inp.wU)); // [N, 2H]
  P.splitProjections(io, R, cc, uu, inp.bC, inp.bU, {
    q: alloc('q', [N, H]),
    kk: alloc('kk', [N, H]),
    v: alloc('v', [N, H]),
    gates: alloc('gates', [N, 2 * nh]),
    skip: alloc('skip', [N, H]),
    so: alloc('so', [N, H]),
  });
  cellForward(io, out.q, out.kk, out.v, out.gates, alloc('ht', [N, H]), { B, T, nh, dh });
  const y = tmp(io.alloc([N, H]));
  P.gatingForward(io, R, out, inp.outW, inp.outB, alloc('hhat', [N, H]), alloc('rstd2', [N, nh]), y);
  const down = tmp(io.matMul(y, inp.wDown)); // [N, d]
  const result = io.alloc([B, T, d]);
  P.residualOut(io, R, inp.x, down, inp.bDown, result);
  free();
  return [result, ...traceNames(k).map((name) => out[name])];
}

/**
 * dy [B, T, d], x, the weights and the trace -> [dx, then one gradient per weight in the order
 * normW, normB, wUp, bUp, (convW, convB when k > 0), wC, bC, wU, bU, outW, outB, wDown, bDown].
 */
export function mlstmTrainBackward(io: HostIO, inp: Record<string, Info>, a: MlstmTrainAttrs): Info[] {
  const R = rowsOf(inp.x, a);
  const { B, T, d, nh, dh, H, dm, k } = R;
  const N = B * T;
  const P = passesFor(io, R);
  const { tmp, free } = scratch(io);
  const dy = { dataId: inp.dy.dataId, shape: [N, d], dtype: inp.dy.dtype } as Info;

  // Down projection: y = (GN + skip) * silu(r) is rebuilt from the trace.
  const y = tmp(io.alloc([N, H]));
  P.gatingOutput(io, R, inp, y);
  const dWDown = weightGrad(io, y, dy);
  const dbDown = columnSums(io, dy, 0, d);
  const dyv = tmp(inputGrad(io, dy, inp.wDown)); // [N, H]

  // Gating, GroupNorm and output gate back to h~; the r, skip and ogate gradients on the way.
  const Wc = 3 * H + 2 * nh;
  const dup = tmp(io.alloc([N, dm + H]));
  const dcc = tmp(io.alloc([N, Wc]));
  const duu = tmp(io.alloc([N, 2 * H]));
  const dht = tmp(io.alloc([N, H]));
  const dOutW = io.alloc([H]);
  const dOutB = io.alloc([H]);
  P.gatingBackward(io, R, inp, dyv, { dup, dcc, duu, dht, dOutW, dOutB });

  // The cell: dq, dk (back through the key's scale) and the gates into dcc; dv into duu.
  const kScale = 1 / Math.sqrt(dh);
  cellBackward(io, inp.q, inp.kk, inp.v, inp.gates, inp.ht, dht, { B, T, nh, dh }, {
    dq: { t: dcc, stride: Wc, col: 0, scale: 1 },
    dk: { t: dcc, stride: Wc, col: H, scale: kScale },
    dgates: { t: dcc, stride: Wc, col: 2 * H, scale: 1 },
    dv: { t: duu, stride: 2 * H, col: 0, scale: 1 },
  });
  const dbC = columnSums(io, dcc, 0, 2 * H + 2 * nh);
  const dbU = columnSums(io, duu, 0, 2 * H);
  const dWC = weightGrad(io, k > 0 ? inp.c : inp.u, dcc);
  const dc = tmp(inputGrad(io, dcc, inp.wC)); // [N, dm]
  const dWU = weightGrad(io, inp.u, duu);
  const du = tmp(inputGrad(io, duu, inp.wU)); // [N, dm], the conv's share added below

  // Conv and silu back to u; du goes into the first dm columns of dup.
  let conv: Info[] = [];
  if (k > 0) {
    conv = [io.alloc([k, dm]), io.alloc([dm])];
    P.causalConvBackward(io, R, dc, inp.c, inp.sa, inp.u, inp.convW, du, dup, conv[0], conv[1]);
  } else {
    const dcv = io.view(dc), duv = io.view(du), dupv = io.view(dup);
    for (let n = 0; n < N; n++) for (let j = 0; j < dm; j++) dupv[n * (dm + H) + j] = duv[n * dm + j] + dcv[n * dm + j];
  }

  // Up-projection and LayerNorm; the residual adds dy to dx.
  const xn = tmp(io.alloc([N, d]));
  P.layerNormOutput(io, R, inp.xhat, inp.normW, inp.normB, xn);
  const dWUp = weightGrad(io, xn, dup);
  const dbUp = columnSums(io, dup, 0, dm + H);
  const dxn = tmp(inputGrad(io, dup, inp.wUp)); // [N, d]
  const dx = io.alloc([B, T, d]);
  const dNormW = io.alloc([d]);
  const dNormB = io.alloc([d]);
  P.layerNormBackward(io, R, dxn, inp.xhat, inp.rstd1, inp.normW, inp.dy, dx, dNormW, dNormB);
  free();
  return [dx, dNormW, dNormB, dWUp, dbUp, ...conv, dWC, dbC, dWU, dbU, dOutW, dOutB, dWDown, dbDown];
}
