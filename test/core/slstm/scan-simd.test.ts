import { describe, expect, it } from 'vitest';
import { scanBackward, scanForward, zeroScanState } from '../../../src/core/slstm/scan.ts';
import { scanBackwardSimd, scanForwardSimd } from '../../../src/core/slstm/scan-simd.ts';
import { Rng } from '../../../src/util/rng.ts';
import { maxRelDiff } from '../../support/rel-diff.ts';

/**
 * The float32 SIMD scan against scan.ts's float64 loops on the same inputs: hs, then dgx and dR for a random
 * upstream gradient. Odd batch and sequence lengths; the tiny model's heads (2 x 8) and the reference's (4 x 16).
 */
function draw(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

describe('the SIMD sLSTM training scan', () => {
  it.each([
    { B: 3, T: 37, nh: 2, dh: 8, scale: 1.5 },
    { B: 2, T: 128, nh: 4, dh: 16, scale: 1.5 },
    // Gates far into exp's range: the stabiliser m does the work.
    { B: 2, T: 50, nh: 2, dh: 8, scale: 30 },
  ])('matches the float64 scan at B = $B, T = $T, heads $nh x $dh, gate inputs of scale $scale', ({ scale, ...dims }) => {
    const { B, T, nh, dh } = dims;
    const H = nh * dh;
    const rng = new Rng(B * T + H + scale);
    const gx = draw(rng, B * T * 4 * H, scale);
    const R = draw(rng, 4 * H * dh, 0.3);
    const dy = draw(rng, B * T * H, 1);
    const simd = scanForwardSimd(gx, R, dims);
    if (!simd) throw new Error('expected WebAssembly SIMD in this runtime');
    const want = scanForward(gx, R, zeroScanState(B, H), dims);
    // float32 states over T steps: a few roundings per step, damped by the forget gate; the pre-activations'
    // rounding (6e-8 of their size, up to a few times `scale`) moves h in proportion.
    expect(maxRelDiff(simd.hs, want.hs)).toBeLessThan(1e-6 + 1e-7 * scale);
    const got = scanBackwardSimd(dy, R, simd.trace, dims);
    const grads = scanBackward(dy, R, want.trace, dims);
    expect(maxRelDiff(got.dgx, grads.dgx)).toBeLessThan(1e-5);
    expect(maxRelDiff(got.dR, grads.dR)).toBeLessThan(1e-5);
    // f' = 0 on the first step: no gradient at all reaches its forget gate.
    for (let b = 0; b < B; b++) expect(got.dgx.subarray(b * T * 4 * H + H, b * T * 4 * H + 2 * H).every((v) => v === 0)).toBe(true);
  });
});
