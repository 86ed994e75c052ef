/**
 * What the row-wise WGSL programs of the webgpu sLSTM training block share (slstm-train-fwd-rows.ts,
 * slstm-train-bwd-rows.ts): sizes, the packed trace layouts, rows per workgroup and code helpers.
 * Each workgroup takes TR rows n = b*T + t, keeps them in workgroup memory and walks output columns,
 * one thread per column with TR accumulators, so every weight is read once per workgroup.
 */
import { gpuOptions, type GpuProgram } from './device.ts';

/** The block's sizes that shape the generated code. */
export interface SlstmSizes {
  readonly d: number;
  readonly nh: number;
  readonly dh: number;
  readonly P: number;
  readonly k: number;
}

/**
 * Row layouts of the packed trace tensors, in floats per row:
 * tA = xhat | xn | c | cpre (c, cpre only when k > 0), tB = hhat | yg | a | b | g,
 * dB = dup (2P) | dyg (H), dD = dxn | dcpre (dcpre only when k > 0).
 */
export function layouts(s: SlstmSizes): {
  WA: number;
  WB: number;
  WDB: number;
  WDD: number;
} {
  const H = s.nh * s.dh;
  return {
    WA: s.k > 0 ? 4 * s.d : 2 * s.d,
    WB: 2 * H + 3 * s.P,
    WDB: 2 * s.P + H,
    WDD: s.k > 0 ? 2 * s.d : s.d,
  };
}

/** Workgroup memory kept below WebGPU's default limit, which every adapter grants. */
const SHARED_BYTES = 16384;
export const WG = 64;

/** Rows per workgroup: at most 16, fewer where `floats(tr)` of workgroup memory would not fit. */
export function rowsPerGroup(floats: (tr: number) => number): number {
  let tr = 16;
  while (tr > 1 && floats(tr) * 4 > SHARED_BYTES) tr /= 2;
  return tr;
}

/**
 * A loop bound: a constant on GPUs (their compilers unroll), the uniform `u.<name>` on software
 * adapters (llvmpipe spends seconds unrolling constant loops).
 */
export function bound(value: number, name: string): string {
  return gpuOptions.opaqueLoopBounds ? `u32(u.${name})` : `${value}u`;
}

export function bindings(outputs: readonly string[], inputs: readonly string[]): string {
  const outs = outputs.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`);
  const ins = inputs.map((n, i) => `@group(0) @binding(${i + outputs.length}) var<storage, read> ${n}: array<f32>;`);
  return [...outs, ...ins, `@group(0) @binding(${outputs.length + inputs.length}) var<uniform> u: U;`].join('\n');
}

export const key = (name: string, s: SlstmSizes, tr: number) =>
  `slstm-train-${name}-${s.d}-${s.nh}x${s.dh}-${s.P}-${s.k}-${tr}-${+gpuOptions.opaqueLoopBounds}`;

/** A generated program and the rows each workgroup takes (dispatch ceil(N / rows) workgroups). */
export interface RowsProgram {
  readonly program: GpuProgram;
  readonly rows: number;
}
