/**
 * The block passes (block-passes.ts) through the generated SIMD kernels of train-pass-kernels.ts, same
 * signatures, for a HostIO whose tensors live in the wasm heap. The float64 accumulators of the weight and bias
 * gradients are heap temporaries of the call.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { kernelsIn, type Kernels } from '../host/simd/instance.ts';
import type { HostIO } from '../host/io.ts';
import type { BlockPasses, Rows } from './block-passes.ts';
import { trainPassFns, type TrainPassWidths } from './train-pass-kernels.ts';

type Info = tf.TensorInfo;

/** Whether the kernels cover these widths: whole vectors of four channels in every row and head. */
function simdPassesCover(R: Rows): boolean {
  return R.d % 4 === 0 && R.dh % 4 === 0 && R.dm % 4 === 0;
}

/** The SIMD passes for R's widths over io's heap; null on a backend without a heap, or without WebAssembly SIMD. */
export function simdBlockPasses(io: HostIO, R: Rows): BlockPasses | null {
  if (!io.heap || !simdPassesCover(R)) return null;
  const w: TrainPassWidths = { d: R.d, nh: R.nh, dh: R.dh, dm: R.dm, k: R.k };
  const k = kernelsIn(io.heap, `mlstm-train:${w.d},${w.nh},${w.dh},${w.dm},${w.k}`, () => trainPassFns(w));
  return k && passesOver(k);
}

function passesOver(k: Kernels): BlockPasses {
  const rows = (R: Rows): number => R.B * R.T;
  /** Runs `use` with a heap temporary of `floats64` float64s (as float32 pairs: io allocates float32 tensors). */
  const withAcc = (io: HostIO, floats64: number, use: (acc: number) => void): void => {
    const acc = io.alloc([2 * floats64]);
    use(io.addr(acc));
    io.free(acc);
  };
  const a = (io: HostIO, ...ts: Info[]): number[] => ts.map((t) => io.addr(t));
  return {
    layerNormForward: (io, R, x, w, b, xhat, rstd, xn) => k.layerNormForward(...a(io, x, w, b, xhat, rstd, xn), rows(R)),
    splitUp: (io, R, up, bUp, u, sir, sr) => k.splitUp(...a(io, up, bUp, u, sir, sr), rows(R)),
    causalConvSilu: (io, R, u, w, bias, c, sa) => k.causalConvSilu(...a(io, u, w, bias, c, sa), R.B, R.T),
    splitProjections: (io, R, cc, uu, bC, bU, o) => k.splitProjections(...a(io, cc, uu, bC, bU, o.q, o.kk, o.v, o.gates, o.skip, o.so), rows(R)),
    gatingForward: (io, R, t, w, b, hhat, rstd2, y) => k.gatingForward(...a(io, t.ht, t.so, t.skip, t.sir, w, b, hhat, rstd2, y), rows(R)),
    residualOut: (io, R, x, down, bias, out) => k.residual(...a(io, x, down, bias, out), rows(R)),
    gatingOutput: (io, R, t, y) => k.gatingOutput(...a(io, t.hhat, t.skip, t.sir, t.outW, t.outB, y), rows(R)),
    gatingBackward: (io, R, t, dy, o) =>
      withAcc(io, 2 * R.H, (acc) =>
        k.gatingBackward(...a(io, dy, t.hhat, t.skip, t.sir, t.sr, t.outW, t.outB, t.rstd2, t.so, t.ht, o.dup, o.dcc, o.duu, o.dht, o.dOutW, o.dOutB), acc, rows(R)),
      ),
    causalConvBackward: (io, R, dc, c, sa, u, w, du, dup, dW, dB) =>
      withAcc(io, (R.k + 1) * R.dm, (acc) => k.causalConvBackward(...a(io, dc, c, sa, u, w, du, dup, dW, dB), acc, R.B, R.T)),
    layerNormOutput: (io, R, xhat, w, b, xn) => k.layerNormOutput(...a(io, xhat, w, b, xn), rows(R)),
    layerNormBackward: (io, R, dxn, xhat, rstd, w, dres, dx, dW, dB) =>
      withAcc(io, 2 * R.d, (acc) => k.layerNormBackward(...a(io, dxn, xhat, rstd, w, dres, dx, dW, dB), acc, rows(R))),
  };
}
