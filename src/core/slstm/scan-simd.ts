/**
 * slstmScanTrain's forward and backward passes on the SIMD kernels of host/simd/slstm-scan-kernels.ts (float32),
 * in a private WebAssembly memory: the inputs are copied in, each batch row runs as one kernel call, and the
 * forward pass's trace is copied out, to be copied back for the backward pass (the blocks of a model run their
 * forward passes before any backward pass, so the memory cannot hold a block's trace until then).
 */
import { scanKernels, scanSimdCovers } from '../host/simd/slstm-scan-kernels.ts';
import type { Kernels } from '../host/simd/instance.ts';
import type { ScanDims } from './scan.ts';

/** The forward pass's trace: pre-activations, then the c, n, h, m states, as the kernels lay them out. */
export interface SimdTrace {
  readonly data: Float32Array;
}

let memory: WebAssembly.Memory | null = null;

/** Offsets (floats) in the memory: R (or its transpose), the trace, gx or dy, dgx, one row's dR, the work rows. */
function layout({ B, T, nh, dh }: ScanDims) {
  const H = nh * dh;
  const R = 0;
  const pre = R + 4 * H * dh;
  const state = B * (T + 1) * H;
  const c = pre + B * T * 4 * H;
  const n = c + state;
  const h = n + state;
  const m = h + state;
  const io = m + state;
  const dgx = io + B * T * 4 * H;
  const dR = dgx + B * T * 4 * H;
  const work = dR + 4 * H * dh;
  return { H, R, pre, c, n, h, m, io, dgx, dR, work, end: work + 3 * H };
}

/** The kernels for these widths in a memory of at least `floats`, and a view of it; null where SIMD cannot run them. */
function kernelsFor(dims: ScanDims, floats: number): { k: Kernels; F: Float32Array } | null {
  if (!scanSimdCovers(dims)) return null;
  const pages = Math.ceil((4 * floats) / 65536);
  if (!memory) memory = new WebAssembly.Memory({ initial: pages });
  const have = memory.buffer.byteLength / 65536;
  if (have < pages) memory.grow(pages - have);
  const k = scanKernels(memory, dims);
  return k ? { k, F: new Float32Array(memory.buffer) } : null;
}

/** The forward pass from the zero state: hs [B, T, H] and the trace; null where the kernels are unavailable. */
export function scanForwardSimd(gx: Float32Array, R: Float32Array, dims: ScanDims): { hs: Float32Array; trace: SimdTrace } | null {
  const { B, T, nh, dh } = dims;
  const at = layout(dims);
  const { H } = at;
  const got = kernelsFor(dims, at.end);
  if (!got) return null;
  const { k, F } = got;
  // Each head's block transposed: [gate, head, input, output].
  for (let b = 0; b < 4 * nh; b++) {
    for (let o = 0; o < dh; o++) for (let i = 0; i < dh; i++) F[at.R + (b * dh + i) * dh + o] = R[(b * dh + o) * dh + i];
  }
  F.set(gx, at.io);
  for (let b = 0; b < B; b++) {
    const s = b * (T + 1) * H;
    F.fill(0, at.c + s, at.c + s + H);
    F.fill(0, at.n + s, at.n + s + H);
    F.fill(0, at.h + s, at.h + s + H);
    F.fill(-Infinity, at.m + s, at.m + s + H);
    const x = 4 * b * T * 4 * H;
    k.forwardRow(4 * at.io + x, 4 * at.R, 4 * at.pre + x, 4 * (at.c + s), 4 * (at.n + s), 4 * (at.h + s), 4 * (at.m + s), T);
  }
  const hs = new Float32Array(B * T * H);
  for (let b = 0; b < B; b++) hs.set(F.subarray(at.h + (b * (T + 1) + 1) * H, at.h + (b + 1) * (T + 1) * H), b * T * H);
  return { hs, trace: { data: F.slice(at.pre, at.io) } };
}

/**
 * The backward pass over a trace of scanForwardSimd's: dgx [B, T, 4H] and dR. A row's T terms of dR are summed
 * in float32 by the kernel, the rows' sums in float64 here: no float32 sum runs over all B T terms.
 */
export function scanBackwardSimd(dy: Float32Array, R: Float32Array, trace: SimdTrace, dims: ScanDims): { dgx: Float32Array; dR: Float32Array } {
  const { B, T, dh } = dims;
  const at = layout(dims);
  const { H } = at;
  const got = kernelsFor(dims, at.end);
  if (!got) throw new Error('scanBackwardSimd: the SIMD kernels that ran the forward pass are unavailable');
  const { k, F } = got;
  F.set(R, at.R);
  F.set(trace.data, at.pre);
  F.set(dy, at.io);
  const dR = new Float64Array(4 * H * dh);
  for (let b = 0; b < B; b++) {
    const s = 4 * b * (T + 1) * H;
    const x = 4 * b * T * 4 * H;
    const args = [4 * at.io + 4 * b * T * H, 4 * at.R, 4 * at.pre + x, 4 * at.c + s, 4 * at.n + s, 4 * at.h + s, 4 * at.m + s];
    k.backwardRow(...args, 4 * at.dgx + x, 4 * at.dR, 4 * at.work, T);
    for (let i = 0; i < dR.length; i++) dR[i] += F[at.dR + i];
  }
  return { dgx: F.slice(at.dgx, at.dgx + B * T * 4 * H), dR: Float32Array.from(dR) };
}
