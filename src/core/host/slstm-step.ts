/**
 * One fused decode step of an sLSTM block on the host backends: LayerNorm, conv, the gate
 * matMuls, the recurrent update (the scan of slstm/scan.ts for one step), GroupNorm and the gated
 * GeLU MLP. Same equations as slstm/block.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { slstmScanFrom } from '../slstm/scan.ts';
import { scratch, type HostIO } from './io.ts';
import { convStepRows, gelu, normRow, residualRows } from './math.ts';

export interface SlstmStepAttrs {
  readonly nh: number;
  readonly dh: number;
  readonly P: number;
  readonly k: number;
}

type Info = tf.TensorInfo;

/**
 * inputs: x [B, d], the block's packed weights, and its state (conv [B, k-1, d] when k > 0;
 * c, n, h, m [B, H]). Returns [y, conv?, c, n, h, m].
 */
export function slstmStepHost(io: HostIO, inp: Record<string, Info>, a: SlstmStepAttrs): Info[] {
  const { nh, dh, P, k } = a;
  const H = nh * dh;
  const [B, d] = inp.x.shape;
  const v = (t: Info) => io.view(t);
  const { tmp, free } = scratch(io);

  const xn = tmp(io.alloc([B, d]));
  const cIn = k > 0 ? tmp(io.alloc([B, d])) : xn;
  const convOut = k > 0 ? io.alloc([B, k - 1, d]) : null;
  {
    const x = v(inp.x), w = v(inp.normW), b = v(inp.normB), xv = v(xn);
    for (let r = 0; r < B; r++) normRow(x, r * d, d, w, b, 0, xv, r * d);
    if (k > 0 && convOut) convStepRows(xv, B, d, k, v(inp.convW), v(inp.convB), v(inp.conv), v(cIn), v(convOut));
  }
  const g1 = tmp(io.matMul(cIn, inp.wC)); // [B, 2H]: i, f
  const g2 = tmp(io.matMul(xn, inp.wX)); // [B, 2H]: z, o
  const gx = new Float32Array(B * 4 * H);
  {
    const g1v = v(g1), g2v = v(g2), bG = v(inp.bG);
    for (let r = 0; r < B; r++) {
      for (let u = 0; u < 2 * H; u++) {
        gx[r * 4 * H + u] = g1v[r * 2 * H + u] + bG[u];
        gx[r * 4 * H + 2 * H + u] = g2v[r * 2 * H + u] + bG[2 * H + u];
      }
    }
  }
  const s0 = { c: v(inp.c).slice(), n: v(inp.n).slice(), h: v(inp.h).slice(), m: v(inp.m).slice() };
  const scan = slstmScanFrom(gx, v(inp.R).slice(), s0, { B, T: 1, nh, dh });
  const cs = io.alloc([B, H]), ns = io.alloc([B, H]), hs = io.alloc([B, H]), ms = io.alloc([B, H]);
  const y = tmp(io.alloc([B, H]));
  {
    v(cs).set(scan.state.c);
    v(ns).set(scan.state.n);
    v(hs).set(scan.state.h);
    v(ms).set(scan.state.m);
    const outW = v(inp.outW), outB = v(inp.outB), yv = v(y);
    for (let r = 0; r < B; r++) for (let j = 0; j < nh; j++) normRow(scan.hs, r * H + j * dh, dh, outW, outB, j * dh, yv, r * H + j * dh);
  }
  const upm = tmp(io.matMul(y, inp.wUp)); // [B, 2P]
  const z = tmp(io.alloc([B, P]));
  {
    const uv = v(upm), bUp = v(inp.bUp), zv = v(z);
    for (let r = 0; r < B; r++) {
      for (let j = 0; j < P; j++) zv[r * P + j] = gelu(uv[r * 2 * P + j] + bUp[j]) * (uv[r * 2 * P + P + j] + bUp[P + j]);
    }
  }
  const down = tmp(io.matMul(z, inp.wDown)); // [B, d]
  const out = io.alloc([B, d]);
  residualRows(v(inp.x), v(down), v(inp.bDown), v(out), B, d);
  free();
  return convOut ? [out, convOut, cs, ns, hs, ms] : [out, cs, ns, hs, ms];
}
