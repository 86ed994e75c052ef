/**
 * The row-wise WGSL programs of the mLSTM training block's backward pass: each one the input
 * gradient of a projection fused with the pointwise backward passes around it, and its workgroup's
 * share of the weight and bias gradients (mlstm-train-bwd-layout.ts), then the pass that adds the
 * shares. The maths is block-passes.ts's and train-kernels.ts's (the host kernels).
 */
import type { GpuProgram } from './device.ts';
import { perThread, productMemory, stagedProduct } from './mlstm-train-bwd-product.ts';
import { ACCUMULATE, bindings, FINAL_WG, gradSegments, ROW_UNIFORM, segmentConsts, sizes, type BwdSpec } from './mlstm-train-bwd-layout.ts';

const key = (name: string, s: BwdSpec) => `mlstm-bwd-${name}-${JSON.stringify(s)}`;

/** Workgroup w's sub-tile loop: r0 and `rows` (fewer than RT at the end, 0 past N), `base` its partials row. */
function header(s: BwdSpec, written: string[], read: string[]): string {
  return `${ROW_UNIFORM}
${bindings(written, read)}
${sizes(s)}
${segmentConsts(s)}
const RT = ${s.RT}u; const WG = ${s.WG}u;`;
}

const LOOP_OPEN = `
  initSizes();
  let N = u32(u.N); let T = u32(u.T); let SUB = u32(u.SUB);
  let base = wid.x * G;
  for (var sub = 0u; sub < SUB; sub++) {
    let r0 = (wid.x * SUB + sub) * RT;
    let rows = min(RT, max(N, r0) - r0);`;

const main = (s: BwdSpec) => `@compute @workgroup_size(${s.WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`;

/**
 * Down projection, gating and GroupNorm back to h~: dyv = dy W_down^T; with y1 = GN + skip,
 * dskip = dyv silu(r), dr = dyv y1 silu'(r), the GroupNorm backward to dh~ and dogate. Writes dht,
 * the skip columns of dcc, the ogate columns of duu, the r columns of dup; shares of dWDown = y^T dy,
 * dbDown, dOutW = colsum(dskip hhat), dOutB = colsum(dskip).
 */
export function gateProgram(s: BwdSpec): GpuProgram {
  const H = s.nh * s.dh;
  const code = `${header(s, ['dht', 'dcc', 'duu', 'dup', 'part'], ['dy', 'wDown', 'hhat', 'skip', 'sir', 'sr', 'outW', 'outB', 'rstd2', 'so', 'ht'])}
// dyv of the sub-tile, then overwritten by y = y1 silu(r) for dWDown.
var<workgroup> sh: array<f32, ${s.RT * H}>;
${productMemory(s, H)}
${main(s)}${LOOP_OPEN}
    ${stagedProduct(s, 'dyv', 'dy', 'D', 'wDown', H, s.d)}
    for (var q = 0u; q < ${perThread(s, H)}u; q++) { let p = lid + q * WG; if (p < RT * H) { sh[p] = dyv[q]; } }
    workgroupBarrier();
    for (var p = lid; p < RT * NH; p += WG) {
      let r = p / NH; let j = p % NH; let n = r0 + r;
      if (r < rows) {
        var m1 = 0.0; var m2 = 0.0;
        for (var e = 0u; e < DH; e++) {
          let ch = j * DH + e; let i = n * H + ch;
          let d1 = sh[r * H + ch] * sir[i] * outW[ch];
          m1 += d1; m2 += d1 * hhat[i];
        }
        m1 /= f32(DH); m2 /= f32(DH);
        let rs = rstd2[n * NH + j];
        for (var e = 0u; e < DH; e++) {
          let ch = j * DH + e; let i = n * H + ch;
          let g = sh[r * H + ch]; let hv = hhat[i]; let si = sir[i]; let sg = sr[i];
          let y1 = hv * outW[ch] + outB[ch] + skip[i];
          let dy1 = g * si;
          dup[n * WUP + DM + ch] = g * y1 * (sg + si * (1.0 - sg)); // silu'(r) = sr + silu(r) (1 - sr)
          dcc[n * WC + BC + ch] = dy1;
          let dhh = rs * (dy1 * outW[ch] - m1 - hv * m2);
          let so_ = so[i];
          duu[n * WU + H + ch] = dhh * ht[i] * so_ * (1.0 - so_);
          dht[i] = dhh * so_;
          sh[r * H + ch] = y1 * si;
        }
      }
    }
    storageBarrier();
    workgroupBarrier();
    for (var p = lid; p < H * D + D + 2u * H; p += WG) {
      var acc = 0.0; var at = 0u;
      if (p < H * D) {
        let ch = p / D; let c = p % D;
        for (var r = 0u; r < rows; r++) { acc += sh[r * H + ch] * dy[(r0 + r) * D + c]; }
        at = O_WDOWN + p;
      } else if (p < H * D + D) {
        let c = p - H * D;
        for (var r = 0u; r < rows; r++) { acc += dy[(r0 + r) * D + c]; }
        at = O_BDOWN + c;
      } else if (p < H * D + D + H) {
        let ch = p - H * D - D;
        for (var r = 0u; r < rows; r++) { let n = r0 + r; acc += dcc[n * WC + BC + ch] * hhat[n * H + ch]; }
        at = O_OUTW + ch;
      } else {
        let ch = p - H * D - D - H;
        for (var r = 0u; r < rows; r++) { acc += dcc[(r0 + r) * WC + BC + ch]; }
        at = O_OUTB + ch;
      }
      ${ACCUMULATE}
    }
    workgroupBarrier();
  }
}
`;
  return { key: key('gate', s), code };
}

/**
 * Projections back to u (and c): dc = dcc W_C^T, du = duu W_U^T; with the conv, da = dc silu'(a)
 * (silu'(a) = sa + c (1 - sa)) is written for the next pass, without it du + dc is. Shares of
 * dWC = c^T dcc (u^T when k = 0), dbC, dWU = u^T duu, dbU and the conv's dW[i] = sum da_t u_{t-(k-1-i)}, dB.
 */
export function projProgram(s: BwdSpec): GpuProgram {
  const conv = s.k > 0;
  const H = s.nh * s.dh;
  const written = [...(conv ? ['da'] : []), 'du', 'part'];
  const read = ['dcc', 'duu', 'wC', 'wU', ...(conv ? ['c', 'sa'] : []), 'uin'];
  const X = conv ? 'c' : 'uin';
  const code = `${header(s, written, read)}
${productMemory(s, s.dm)}
${main(s)}${LOOP_OPEN}
    ${stagedProduct(s, 'accC', 'dcc', 'WC', 'wC', s.dm, 3 * H + 2 * s.nh)}
    ${stagedProduct(s, 'accU', 'duu', 'WU', 'wU', s.dm, 2 * H)}
    for (var q = 0u; q < ${perThread(s, s.dm)}u; q++) {
      let p = lid + q * WG;
      let r = p / DM; let j = p % DM; let n = r0 + r;
      if (p < RT * DM && r < rows) {
        let dc = accC[q];
        let dv = accU[q];
        ${
          conv
            ? `let sg = sa[n * DM + j];
        da[n * DM + j] = dc * (sg + c[n * DM + j] * (1.0 - sg));
        du[n * DM + j] = dv;`
            : 'du[n * DM + j] = dv + dc;'
        }
      }
    }
    ${conv ? 'storageBarrier();' : ''}
    let e1 = DM * WC; let e2 = e1 + BC; let e3 = e2 + DM * WU; let e4 = e3 + WU;
    for (var p = lid; p < e4${conv ? ' + K * DM + DM' : ''}; p += WG) {
      var acc = 0.0; var at = 0u;
      if (p < e1) {
        let i = p / WC; let m = p % WC;
        for (var r = 0u; r < rows; r++) { let n = r0 + r; acc += ${X}[n * DM + i] * dcc[n * WC + m]; }
        at = O_WC + p;
      } else if (p < e2) {
        let m = p - e1;
        for (var r = 0u; r < rows; r++) { acc += dcc[(r0 + r) * WC + m]; }
        at = O_BC + m;
      } else if (p < e3) {
        let q = p - e2; let i = q / WU; let m = q % WU;
        for (var r = 0u; r < rows; r++) { let n = r0 + r; acc += uin[n * DM + i] * duu[n * WU + m]; }
        at = O_WU + q;
      } else if (p < e4) {
        let m = p - e3;
        for (var r = 0u; r < rows; r++) { acc += duu[(r0 + r) * WU + m]; }
        at = O_BU + m;
      }${
        conv
          ? ` else if (p < e4 + K * DM) {
        // Tap i joins output row t to input row t - (K-1-i) of the same sequence.
        let q = p - e4; let i = q / DM; let j = q % DM; let shift = K - 1u - i;
        for (var r = 0u; r < rows; r++) {
          let n = r0 + r;
          if (n % T >= shift) { acc += da[n * DM + j] * uin[(n - shift) * DM + j]; }
        }
        at = O_CONVW + q;
      } else {
        let j = p - e4 - K * DM;
        for (var r = 0u; r < rows; r++) { acc += da[(r0 + r) * DM + j]; }
        at = O_CONVB + j;
      }`
          : ''
      }
      ${ACCUMULATE}
    }
    workgroupBarrier();
  }
}
`;
  return { key: key('proj', s), code };
}

/**
 * Conv back to u, up projection and LayerNorm: dup[:, :dm] = du + sum_i W[i] da_{t+(k-1-i)}
 * (dup[:, dm:] holds dr already), dxn = dup W_up^T, dx = dy + rstd (dxhat - mean(dxhat) - xhat
 * mean(dxhat xhat)) with dxhat = dxn w. Shares of dWUp = xn^T dup (xn = xhat w + b), dbUp,
 * dNormW = colsum(dxn xhat), dNormB = colsum(dxn).
 */
export function upProgram(s: BwdSpec): GpuProgram {
  const conv = s.k > 0;
  const H = s.nh * s.dh;
  const read = ['du', ...(conv ? ['da', 'convW'] : []), 'wUp', 'xhat', 'normW', 'normB', 'rstd1', 'dy'];
  const code = `${header(s, ['dx', 'dup', 'part'], read)}
var<workgroup> sh: array<f32, ${s.RT * s.d}>; // dxn
var<workgroup> sm: array<f32, ${2 * s.RT}>; // per row: mean(dxhat), mean(dxhat xhat)
${productMemory(s, s.d)}
${main(s)}${LOOP_OPEN}
    for (var p = lid; p < RT * DM; p += WG) {
      let r = p / DM; let j = p % DM; let n = r0 + r;
      if (r < rows) {
        var val = du[n * DM + j];
        ${
          conv
            ? `let t = n % T;
        for (var i = 0u; i < K; i++) {
          let shift = K - 1u - i;
          if (t + shift < T) { val += convW[i * DM + j] * da[(n + shift) * DM + j]; }
        }`
            : ''
        }
        dup[n * WUP + j] = val;
      }
    }
    storageBarrier();
    ${stagedProduct(s, 'dxn', 'dup', 'WUP', 'wUp', s.d, s.dm + H)}
    for (var q = 0u; q < ${perThread(s, s.d)}u; q++) { let p = lid + q * WG; if (p < RT * D) { sh[p] = dxn[q]; } }
    workgroupBarrier();
    for (var r = lid; r < RT; r += WG) {
      var m1 = 0.0; var m2 = 0.0;
      if (r < rows) {
        let n = r0 + r;
        for (var c = 0u; c < D; c++) { let g = sh[r * D + c] * normW[c]; m1 += g; m2 += g * xhat[n * D + c]; }
      }
      sm[2u * r] = m1 / f32(D); sm[2u * r + 1u] = m2 / f32(D);
    }
    workgroupBarrier();
    let e0 = RT * D; let e1 = e0 + D * WUP; let e2 = e1 + WUP; let e3 = e2 + D;
    for (var p = lid; p < e3 + D; p += WG) {
      if (p < e0) {
        let r = p / D; let c = p % D; let n = r0 + r;
        if (r < rows) {
          let i = n * D + c;
          dx[i] = dy[i] + rstd1[n] * (sh[p] * normW[c] - sm[2u * r] - xhat[i] * sm[2u * r + 1u]);
        }
        continue;
      }
      var acc = 0.0; var at = 0u;
      if (p < e1) {
        let q = p - e0; let c = q / WUP; let m = q % WUP;
        for (var r = 0u; r < rows; r++) { let n = r0 + r; acc += (xhat[n * D + c] * normW[c] + normB[c]) * dup[n * WUP + m]; }
        at = O_WUP + q;
      } else if (p < e2) {
        let m = p - e1;
        for (var r = 0u; r < rows; r++) { acc += dup[(r0 + r) * WUP + m]; }
        at = O_BUP + m;
      } else if (p < e3) {
        let c = p - e2;
        for (var r = 0u; r < rows; r++) { acc += sh[r * D + c] * xhat[(r0 + r) * D + c]; }
        at = O_NORMW + c;
      } else {
        let c = p - e3;
        for (var r = 0u; r < rows; r++) { acc += sh[r * D + c]; }
        at = O_NORMB + c;
      }
      ${ACCUMULATE}
    }
    workgroupBarrier();
  }
}
`;
  return { key: key('up', s), code };
}

/** Adds the NT partial rows (in order) and writes every weight gradient to its own tensor. */
export function finalProgram(s: BwdSpec): GpuProgram {
  const { segs, G } = gradSegments(s);
  const outs = segs.map((g) => `g_${g.name}`);
  const branches = segs
    .map((g, i) => {
      const end = g.offset + g.size;
      const body = `${outs[i]}[i - ${g.offset}u] = acc;`;
      return i === segs.length - 1 ? `{ ${body} }` : `if (i < ${end}u) { ${body} }`;
    })
    .join(' else ');
  const code = `struct U { NT: i32, p0: i32, p1: i32, p2: i32 }
${bindings(outs, ['part'])}
const G = ${G}u;
@compute @workgroup_size(${FINAL_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  let i = gid.x + gid.y * nw.x * ${FINAL_WG}u;
  if (i >= G) { return; }
  let NT = u32(u.NT);
  var acc = 0.0;
  for (var t = 0u; t < NT; t++) { acc += part[t * G + i]; }
  ${branches}
}
`;
  return { key: key('final', s), code };
}
