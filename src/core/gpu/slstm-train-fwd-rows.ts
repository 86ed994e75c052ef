/**
 * The forward row programs of the webgpu sLSTM training block (slstm-train-block.ts): LayerNorm +
 * causal conv + gate projections before the scan, GroupNorm + gated GeLU MLP + residual after it.
 * The conv reads k-1 rows back: those halo rows are recomputed by the workgroup.
 */
import { WGSL_MATH, zeroedArray } from './device.ts';
import { bindings, bound, key, layouts, rowsPerGroup, WG, type RowsProgram, type SlstmSizes } from './slstm-train-rows.ts';

/**
 * Forward 1: x -> tA (xhat, xn, c, cpre), rstd1 [N] and gx = [c wC | xn wX] + bG [N, 4H].
 * Inputs x, normW, normB, (convW, convB), wC, wX, bG. Uniforms: N, T, d, 2H.
 */
export function gatesProgram(s: SlstmSizes): RowsProgram {
  const { d, k } = s;
  const H = s.nh * s.dh;
  const HALO = k > 0 ? k - 1 : 0;
  const TR = rowsPerGroup((tr) => (tr + HALO) * (d + 2) + (k > 0 ? tr * d : 0));
  const { WA } = layouts(s);
  const conv = k > 0 ? ['convW', 'convB'] : [];
  const dl = bound(d, 'D');
  const cSrc = k > 0 ? 'cS[r * D + kk]' : 'xnS[r * D + kk]';
  const code = /* wgsl */ `
struct U { N: i32, T: i32, D: i32, H2: i32 }
${bindings(['tA', 'rstd1', 'gx'], ['x', 'normW', 'normB', ...conv, 'wC', 'wX', 'bG'])}
${WGSL_MATH}
const D = ${d}u; const H2 = ${2 * H}u; const G4 = ${4 * H}u; const K = ${k}u; const HALO = ${HALO}u;
const TR = ${TR}u; const TRH = ${TR + HALO}u; const WG = ${WG}u; const WA = ${WA}u;
var<workgroup> xnS: array<f32, ${(TR + HALO) * d}>;
var<workgroup> statS: array<f32, ${2 * (TR + HALO)}>;
${k > 0 ? `var<workgroup> cS: array<f32, ${TR * d}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N); let T = u32(u.T);
  let r0 = wid.x * TR;
  // LayerNorm of the tile's rows and of the HALO rows before it (the conv's history): rows staged
  // by all threads (coalesced), statistics one thread per row from workgroup memory.
  for (var e = lid; e < TRH * D; e += WG) {
    let ni = i32(r0 + e / D) - i32(HALO);
    var v = 0.0;
    if (ni >= 0 && u32(ni) < N) { v = x[u32(ni) * D + e % D]; }
    xnS[e] = v;
  }
  workgroupBarrier();
  for (var q = lid; q < TRH; q += WG) {
    var mean = 0.0;
    for (var c = 0u; c < ${dl}; c++) { mean += xnS[q * D + c]; }
    mean /= f32(D);
    var vr = 0.0;
    for (var c = 0u; c < ${dl}; c++) { let e = xnS[q * D + c] - mean; vr += e * e; }
    let rs = 1.0 / sqrt(vr / f32(D) + 1e-5);
    statS[2u * q] = mean;
    statS[2u * q + 1u] = rs;
    let n = r0 + q - HALO;
    if (q >= HALO && n < N) { rstd1[n] = rs; }
  }
  workgroupBarrier();
  for (var e = lid; e < TRH * D; e += WG) {
    let q = e / D; let c = e % D;
    let ni = i32(r0 + q) - i32(HALO);
    var xn = 0.0;
    if (ni >= 0 && u32(ni) < N) {
      let n = u32(ni);
      let xh = (xnS[e] - statS[2u * q]) * statS[2u * q + 1u];
      xn = xh * normW[c] + normB[c];
      if (q >= HALO) { tA[n * WA + c] = xh; tA[n * WA + D + c] = xn; }
    }
    xnS[e] = xn;
  }
  workgroupBarrier();
  ${
    k > 0
      ? `for (var e = lid; e < TR * D; e += WG) {
    let r = e / D; let ch = e % D; let n = r0 + r;
    var cv = 0.0;
    if (n < N) {
      let t = n % T;
      var z = convB[ch];
      // Tap j reads row t - back; rows before the sequence start are zero padding.
      for (var j = 0u; j < K; j++) {
        let back = K - 1u - j;
        if (t >= back) { z += convW[j * D + ch] * xnS[(r + HALO - back) * D + ch]; }
      }
      cv = silu(z);
      tA[n * WA + 2u * D + ch] = cv;
      tA[n * WA + 3u * D + ch] = z;
    }
    cS[e] = cv;
  }
  workgroupBarrier();`
      : ''
  }
  for (var col = lid; col < G4; col += WG) {
    ${zeroedArray('acc', TR)}
    for (var r = 0u; r < TR; r++) { acc[r] = 0.0; }
    if (col < H2) {
      for (var kk = 0u; kk < ${dl}; kk++) {
        let w = wC[kk * H2 + col];
        for (var r = 0u; r < TR; r++) { acc[r] += ${cSrc} * w; }
      }
    } else {
      for (var kk = 0u; kk < ${dl}; kk++) {
        let w = wX[kk * H2 + col - H2];
        for (var r = 0u; r < TR; r++) { acc[r] += xnS[(r + HALO) * D + kk] * w; }
      }
    }
    let bias = bG[col];
    for (var r = 0u; r < TR; r++) {
      let n = r0 + r;
      if (n < N) { gx[n * G4 + col] = acc[r] + bias; }
    }
  }
}
`;
  return { program: { key: key('gates', s, TR), code }, rows: TR };
}

/**
 * Forward 2: hs -> tB (hhat, yg, a, b, g), rstd2 [N, nh] and y = x + W_d (gelu(a) b) + b_d.
 * Inputs x, hs, outW, outB, wUp, bUp, wDown, bDown. Uniforms: N, H, P, d.
 */
export function outProgram(s: SlstmSizes): RowsProgram {
  const { d, nh, dh, P } = s;
  const H = nh * dh;
  const TR = rowsPerGroup((tr) => tr * (H + P + 2 * nh));
  const { WB } = layouts(s);
  const code = /* wgsl */ `
struct U { N: i32, H: i32, P: i32, D: i32 }
${bindings(['y', 'tB', 'rstd2'], ['x', 'hs', 'outW', 'outB', 'wUp', 'bUp', 'wDown', 'bDown'])}
${WGSL_MATH}
const NH = ${nh}u; const DH = ${dh}u; const H = ${H}u; const P = ${P}u; const P2 = ${2 * P}u; const D = ${d}u;
const TR = ${TR}u; const WG = ${WG}u; const WB = ${WB}u;
var<workgroup> ygS: array<f32, ${TR * H}>;
var<workgroup> gS: array<f32, ${TR * P}>;
var<workgroup> statS: array<f32, ${2 * TR * nh}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let N = u32(u.N);
  let r0 = wid.x * TR;
  // GroupNorm: rows staged by all threads, statistics one thread per (row, head).
  for (var e = lid; e < TR * H; e += WG) {
    let n = r0 + e / H;
    var v = 0.0;
    if (n < N) { v = hs[n * H + e % H]; }
    ygS[e] = v;
  }
  workgroupBarrier();
  for (var e = lid; e < TR * NH; e += WG) {
    let r = e / NH; let j = e % NH; let n = r0 + r;
    let at = r * H + j * DH;
    var mean = 0.0;
    for (var i = 0u; i < DH; i++) { mean += ygS[at + i]; }
    mean /= f32(DH);
    var vr = 0.0;
    for (var i = 0u; i < DH; i++) { let e2 = ygS[at + i] - mean; vr += e2 * e2; }
    let rs = 1.0 / sqrt(vr / f32(DH) + 1e-5);
    statS[2u * e] = mean;
    statS[2u * e + 1u] = rs;
    if (n < N) { rstd2[n * NH + j] = rs; }
  }
  workgroupBarrier();
  for (var e = lid; e < TR * H; e += WG) {
    let r = e / H; let col = e % H; let n = r0 + r;
    let st = 2u * (r * NH + col / DH);
    var yg = 0.0;
    if (n < N) {
      let hh = (ygS[e] - statS[st]) * statS[st + 1u];
      yg = hh * outW[col] + outB[col];
      tB[n * WB + col] = hh;
      tB[n * WB + H + col] = yg;
    }
    ygS[e] = yg;
  }
  workgroupBarrier();
  for (var p = lid; p < P; p += WG) {
    ${zeroedArray('accA', TR)}
    ${zeroedArray('accB', TR)}
    for (var r = 0u; r < TR; r++) { accA[r] = 0.0; accB[r] = 0.0; }
    for (var kk = 0u; kk < ${bound(H, 'H')}; kk++) {
      let wa = wUp[kk * P2 + p]; let wb = wUp[kk * P2 + P + p];
      for (var r = 0u; r < TR; r++) { let v = ygS[r * H + kk]; accA[r] += v * wa; accB[r] += v * wb; }
    }
    for (var r = 0u; r < TR; r++) {
      let n = r0 + r;
      let a = accA[r] + bUp[p]; let b = accB[r] + bUp[P + p];
      let g = gelu(a) * b;
      gS[r * P + p] = g;
      if (n < N) { tB[n * WB + 2u * H + p] = a; tB[n * WB + 2u * H + P + p] = b; tB[n * WB + 2u * H + P2 + p] = g; }
    }
  }
  workgroupBarrier();
  for (var col = lid; col < D; col += WG) {
    ${zeroedArray('acc', TR)}
    for (var r = 0u; r < TR; r++) { acc[r] = 0.0; }
    for (var p = 0u; p < ${bound(P, 'P')}; p++) {
      let w = wDown[p * D + col];
      for (var r = 0u; r < TR; r++) { acc[r] += gS[r * P + p] * w; }
    }
    for (var r = 0u; r < TR; r++) {
      let n = r0 + r;
      if (n < N) { y[n * D + col] = acc[r] + bDown[col] + x[n * D + col]; }
    }
  }
}
`;
  return { program: { key: key('out', s, TR), code }, rows: TR };
}
