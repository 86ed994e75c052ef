/**
 * The backward row programs of the webgpu sLSTM training block (slstm-train-block.ts): the MLP and
 * GroupNorm backward before the scan's BPTT, the gate projections, conv and LayerNorm backward after
 * it. The conv's backward reads k-1 rows ahead: those halo rows are recomputed by the workgroup.
 */
import { WGSL_MATH, zeroedArray } from './device.ts';
import { bindings, bound, key, layouts, rowsPerGroup, WG, type RowsProgram, type SlstmSizes } from './slstm-train-rows.ts';

/**
 * Backward of forward 2: dy -> dB (dup = [da | db], dyg) and dhs [N, H] (GroupNorm's input grad).
 * Inputs dy, tB, rstd2, wDown, wUp, outW. Uniforms: N, H, 2P, d.
 */
export function outBackwardProgram(s: SlstmSizes): RowsProgram {
  const { d, nh, dh, P } = s;
  const H = nh * dh;
  const TR = rowsPerGroup((tr) => tr * (d + 2 * P + 2 * H + 2 * nh));
  const { WB, WDB } = layouts(s);
  const code = /* wgsl */ `
struct U { N: i32, H: i32, P2: i32, D: i32 }
${bindings(['dB', 'dhs'], ['dy', 'tB', 'rstd2', 'wDown', 'wUp', 'outW'])}
${WGSL_MATH}
const NH = ${nh}u; const DH = ${dh}u; const H = ${H}u; const P = ${P}u; const P2 = ${2 * P}u; const D = ${d}u;
const TR = ${TR}u; const WG = ${WG}u; const WB = ${WB}u; const WDB = ${WDB}u;
var<workgroup> dyS: array<f32, ${TR * d}>;
var<workgroup> dupS: array<f32, ${TR * 2 * P}>;
var<workgroup> dhhS: array<f32, ${TR * H}>;
var<workgroup> hhS: array<f32, ${TR * H}>;
var<workgroup> statS: array<f32, ${2 * TR * nh}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N);
  let r0 = wid.x * TR;
  for (var e = lid; e < TR * D; e += WG) {
    let n = r0 + e / D;
    var v = 0.0;
    if (n < N) { v = dy[n * D + e % D]; }
    dyS[e] = v;
  }
  for (var e = lid; e < TR * H; e += WG) {
    let n = r0 + e / H;
    var v = 0.0;
    if (n < N) { v = tB[n * WB + e % H]; }
    hhS[e] = v;
  }
  workgroupBarrier();
  for (var p = lid; p < P; p += WG) {
    ${zeroedArray('acc', TR)}
    for (var r = 0u; r < TR; r++) { acc[r] = 0.0; }
    for (var c = 0u; c < ${bound(d, 'D')}; c++) {
      let w = wDown[p * D + c];
      for (var r = 0u; r < TR; r++) { acc[r] += dyS[r * D + c] * w; }
    }
    for (var r = 0u; r < TR; r++) {
      let n = r0 + r;
      var da = 0.0; var db = 0.0;
      if (n < N) {
        let a = tB[n * WB + 2u * H + p]; let b = tB[n * WB + 2u * H + P + p];
        // d gelu / da for the erf form: Phi(a) + a phi(a).
        let dgelu = 0.5 * (1.0 + erf_(a * 0.70710678118654752)) + a * exp(-0.5 * a * a) * 0.39894228040143268;
        da = acc[r] * b * dgelu;
        db = acc[r] * gelu(a);
        dB[n * WDB + p] = da;
        dB[n * WDB + P + p] = db;
      }
      dupS[r * P2 + p] = da;
      dupS[r * P2 + P + p] = db;
    }
  }
  workgroupBarrier();
  for (var col = lid; col < H; col += WG) {
    ${zeroedArray('acc', TR)}
    for (var r = 0u; r < TR; r++) { acc[r] = 0.0; }
    for (var q = 0u; q < ${bound(2 * P, 'P2')}; q++) {
      let w = wUp[col * P2 + q];
      for (var r = 0u; r < TR; r++) { acc[r] += dupS[r * P2 + q] * w; }
    }
    let ow = outW[col];
    for (var r = 0u; r < TR; r++) {
      let n = r0 + r;
      if (n < N) { dB[n * WDB + P2 + col] = acc[r]; }
      dhhS[r * H + col] = acc[r] * ow;
    }
  }
  workgroupBarrier();
  for (var e = lid; e < TR * NH; e += WG) {
    let r = e / NH; let j = e % NH;
    var m1 = 0.0; var m2 = 0.0;
    for (var i = 0u; i < DH; i++) {
      let at = r * H + j * DH + i;
      m1 += dhhS[at]; m2 += dhhS[at] * hhS[at];
    }
    statS[2u * e] = m1 / f32(DH);
    statS[2u * e + 1u] = m2 / f32(DH);
  }
  workgroupBarrier();
  for (var e = lid; e < TR * H; e += WG) {
    let r = e / H; let col = e % H; let n = r0 + r;
    if (n < N) {
      let j = col / DH;
      let st = 2u * (r * NH + j);
      dhs[n * H + col] = (dhhS[e] - statS[st] - hhS[e] * statS[st + 1u]) * rstd2[n * NH + j];
    }
  }
}
`;
  return { program: { key: key('out-bwd', s, TR), code }, rows: TR };
}

/**
 * Backward of forward 1: dgx -> dD (dxn, dcpre) and dx = dy + LayerNorm's input grad.
 * Inputs dgx, dy, tA, rstd1, normW, (convW), wC, wX. Uniforms: N, T, d, 2H.
 */
export function gatesBackwardProgram(s: SlstmSizes): RowsProgram {
  const { d, k } = s;
  const H = s.nh * s.dh;
  const HALO = k > 0 ? k - 1 : 0;
  const TR = rowsPerGroup((tr) => (tr + HALO) * d + tr * (d + 2));
  const { WA, WDD } = layouts(s);
  const dl = bound(d, 'D');
  const hl = bound(2 * H, 'H2');
  const code = /* wgsl */ `
struct U { N: i32, T: i32, D: i32, H2: i32 }
${bindings(['dx', 'dD'], ['dgx', 'dy', 'tA', 'rstd1', 'normW', ...(k > 0 ? ['convW'] : []), 'wC', 'wX'])}
${WGSL_MATH}
const D = ${d}u; const H2 = ${2 * H}u; const G4 = ${4 * H}u; const K = ${k}u; const HALO = ${HALO}u;
const TR = ${TR}u; const TRH = ${TR + HALO}u; const WG = ${WG}u; const WA = ${WA}u; const WDD = ${WDD}u;
var<workgroup> dcS: array<f32, ${(TR + HALO) * d}>;
var<workgroup> dxnS: array<f32, ${TR * d}>;
var<workgroup> statS: array<f32, ${2 * TR}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N); let T = u32(u.T);
  let r0 = wid.x * TR;
  // The conv branch's gradient for the tile and the HALO rows after it (the conv reads ahead).
  for (var kk = lid; kk < D; kk += WG) {
    ${zeroedArray('acc', TR + HALO)}
    for (var q = 0u; q < TRH; q++) { acc[q] = 0.0; }
    for (var col = 0u; col < ${hl}; col++) {
      let w = wC[kk * H2 + col];
      // Rows past the end are clamped here and zeroed below.
      for (var q = 0u; q < TRH; q++) { acc[q] += dgx[min(r0 + q, N - 1u) * G4 + col] * w; }
    }
    for (var q = 0u; q < TRH; q++) {
      let n = r0 + q;
      var v = 0.0;
      if (n < N) {
        v = acc[q];
        ${
          k > 0
            ? `let z = tA[n * WA + 3u * D + kk];
        let sg = sigm(z);
        v *= sg * (1.0 + z * (1.0 - sg));
        if (q < TR) { dD[n * WDD + D + kk] = v; }`
            : ''
        }
      }
      dcS[q * D + kk] = v;
    }
  }
  workgroupBarrier();
  for (var kk = lid; kk < D; kk += WG) {
    ${zeroedArray('acc', TR)}
    for (var r = 0u; r < TR; r++) { acc[r] = 0.0; }
    for (var col = 0u; col < ${hl}; col++) {
      let w = wX[kk * H2 + col];
      for (var r = 0u; r < TR; r++) { acc[r] += dgx[min(r0 + r, N - 1u) * G4 + H2 + col] * w; }
    }
    for (var r = 0u; r < TR; r++) {
      let n = r0 + r;
      var v = 0.0;
      if (n < N) {
        v = acc[r];
        ${
          k > 0
            ? `let t = n % T;
        // Input row t feeds output row t + ahead through tap K-1-ahead, within the sequence.
        for (var j = 0u; j < K; j++) {
          let ahead = K - 1u - j;
          if (t + ahead < T) { v += convW[j * D + kk] * dcS[(r + ahead) * D + kk]; }
        }`
            : 'v += dcS[r * D + kk];'
        }
        dD[n * WDD + kk] = v;
      }
      dxnS[r * D + kk] = v;
    }
  }
  workgroupBarrier();
  // LayerNorm backward: xhat staged into dcS (free now), statistics one thread per row.
  for (var e = lid; e < TR * D; e += WG) {
    let n = r0 + e / D;
    var v = 0.0;
    if (n < N) { v = tA[n * WA + e % D]; }
    dcS[e] = v;
    dxnS[e] *= normW[e % D];
  }
  workgroupBarrier();
  for (var r = lid; r < TR; r += WG) {
    var m1 = 0.0; var m2 = 0.0;
    for (var c = 0u; c < ${dl}; c++) {
      let g = dxnS[r * D + c];
      m1 += g; m2 += g * dcS[r * D + c];
    }
    statS[2u * r] = m1 / f32(D);
    statS[2u * r + 1u] = m2 / f32(D);
  }
  workgroupBarrier();
  for (var e = lid; e < TR * D; e += WG) {
    let r = e / D; let n = r0 + r;
    if (n < N) { dx[n * D + e % D] = dy[n * D + e % D] + (dxnS[e] - statS[2u * r] - dcS[e] * statS[2u * r + 1u]) * rstd1[n]; }
  }
}
`;
  return { program: { key: key('gates-bwd', s, TR), code }, rows: TR };
}
