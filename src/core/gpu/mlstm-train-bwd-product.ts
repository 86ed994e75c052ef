/**
 * The input-gradient product of the backward row kernels as WGSL: out[r, j] = sum_m A[n, m] W[j, m]
 * (dY W^T with W stored [J, M], rows n = r0 + r of the sub-tile). Threads run along j, so reading W
 * straight from memory would touch one cache line per thread per step; instead chunks of MC columns
 * (spec.MC) of W and of the tile's A are staged in workgroup memory with coalesced loads, W's rows
 * padded to MC + 1 floats so that threads reading one column hit distinct banks.
 */
import type { BwdSpec } from './mlstm-train-bwd-layout.ts';
import { zeroedArray } from './device.ts';

/** Outputs per thread of a product with J columns: RT * J / WG, rounded up. */
export const perThread = (s: BwdSpec, J: number): number => Math.ceil((s.RT * J) / s.WG);

/** Workgroup arrays the products of one kernel share: `ws` for W (the widest J) and `as_` for A. */
export function productMemory(s: BwdSpec, widestJ: number): string {
  return `var<workgroup> ws: array<f32, ${widestJ * (s.MC + 1)}>;
var<workgroup> as_: array<f32, ${s.RT * s.MC}>;`;
}

/**
 * Code that leaves out[r, j] in `acc` (a private array of perThread(s, J) floats: output
 * p = lid + q * WG, r = p / J, j = p % J). A [*, aStride] read from column 0, W [J, M]. J and M are
 * literals even where sizes are read from the uniforms: the chunk loop holds barriers, and WGSL's
 * uniformity analysis does not take private variables for uniform.
 */
export function stagedProduct(s: BwdSpec, acc: string, A: string, aStride: string, W: string, Jn: number, Mn: number): string {
  const { MC } = s;
  const per = perThread(s, Jn);
  const J = `${Jn}u`;
  const M = `${Mn}u`;
  return `
    ${zeroedArray(acc, per)}
    for (var m0 = 0u; m0 < ${M}; m0 += ${MC}u) {
      for (var p = lid; p < ${J} * ${MC}u; p += WG) {
        let j = p / ${MC}u; let ci = p % ${MC}u;
        var w = 0.0;
        if (m0 + ci < ${M}) { w = ${W}[j * ${M} + m0 + ci]; }
        ws[j * ${MC + 1}u + ci] = w;
      }
      for (var p = lid; p < RT * ${MC}u; p += WG) {
        let r = p / ${MC}u; let ci = p % ${MC}u;
        var a = 0.0;
        if (r < rows && m0 + ci < ${M}) { a = ${A}[(r0 + r) * ${aStride} + m0 + ci]; }
        as_[p] = a;
      }
      workgroupBarrier();
      for (var q = 0u; q < ${per}u; q++) {
        let p = lid + q * WG;
        if (p < RT * ${J}) {
          let r = p / ${J}; let j = p % ${J};
          var x = ${acc}[q];
          for (var ci = 0u; ci < ${MC}u; ci++) { x += as_[r * ${MC}u + ci] * ws[j * ${MC + 1}u + ci]; }
          ${acc}[q] = x;
        }
      }
      workgroupBarrier();
    }`;
}
