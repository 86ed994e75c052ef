/**
 * The parallel mLSTM cell's backward pass as one WGSL program: one workgroup per (sequence, head),
 * the equations of host-cell.ts's cellBackward. With b = cumsum(logsigmoid(f)), g_s = i_s - b_s and
 * M_t = max_{s<=t} g_s: D[t, s] = exp(g_s - M_t), S = (q k^T) * D, r_t = rowsum S, z_t = max(|r_t|,
 * exp(min(-(b_t + M_t), 80))) and, from dh~ (gz = dh~ / z):
 *   dr_t = -(dh~_t . h~_t) / z_t sign(r_t) where |r_t| > floor_t;  dS = gz v^T + dr 1^T
 *   dq = (dS * D) k;  dk = (dS * D)^T q;  dv = S^T gz
 *   di = colsum(dS * S);  df_t = sum_{u>=t} (rowsum - colsum)(dS * S)_u * sigmoid(-f_t)
 * Phases: prefix scans for b and M; one pass per row t (dq, r, z, dr, rowsum); one pass per column s
 * (dk, dv, colsum), each staging SC steps of its operands in workgroup memory at a time; a suffix
 * scan for df. [T] quantities go through a global scratch so that T is not bounded by workgroup
 * memory; the [T, T] matrices are never stored.
 */
import { NORM_EXP_CAP } from '../mlstm/cell.ts';
import { type GpuProgram, WGSL_MATH, zeroedArray } from './device.ts';
import { bindings, f32, type BwdSpec } from './mlstm-train-bwd-layout.ts';

/** Scratch arrays per (sequence, head), each [T]: g, M, floor, z, dr, rowsum, colsum. */
export const CELL_SCRATCH = 7;

/** Hillis-Steele inclusive scan of sc[0..CW) with `op`; every thread reads the result after it. */
function scan(op: (a: string, b: string) => string, identity: string): string {
  return `
    for (var off = 1u; off < CW; off = off * 2u) {
      let xa = sc[lid];
      var xb = ${identity};
      if (lid >= off) { xb = sc[lid - off]; }
      workgroupBarrier();
      sc[lid] = ${op('xa', 'xb')};
      workgroupBarrier();
    }`;
}


export function cellProgram(s: BwdSpec): GpuProgram {
  const { nh, dh, CW } = s;
  const H = nh * dh;
  const SC = s.SC;
  const sizes = s.opaque ? 'var<private> DH: u32;' : `const DH = ${dh}u;`;
  const code = /* wgsl */ `struct UC { B: i32, T: i32, DH_: i32, p0: i32 }
${bindings(['scratch', 'dcc', 'duu'], ['q', 'kk', 'v', 'gates', 'ht', 'dht'], 'UC')}
${WGSL_MATH}
${sizes}
const NH = ${nh}u; const H = ${H}u; const WC = ${3 * H + 2 * nh}u; const WU = ${2 * H}u; const CW = ${CW}u;
const SC = ${SC}u;
const KSCALE = ${f32(1 / Math.sqrt(dh))}; const CAP = ${f32(NORM_EXP_CAP)}; const LOWEST = -3.0e38;
var<workgroup> sc: array<f32, ${CW}>;
// Staged steps: k and v (rows pass) or q and dh~ (columns pass) [SC, DH]; g, or M, 1/z and dr [SC].
var<workgroup> sa: array<f32, ${SC * dh}>;
var<workgroup> sv: array<f32, ${SC * dh}>;
var<workgroup> s1: array<f32, ${SC}>;
var<workgroup> s2: array<f32, ${SC}>;
var<workgroup> s3: array<f32, ${SC}>;

@compute @workgroup_size(${CW})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${s.opaque ? 'DH = u32(u.DH_);' : ''}
  let b = wid.x / NH; let j = wid.x % NH; let T = u32(u.T);
  let sb = wid.x * ${CELL_SCRATCH}u * T; // scratch: [g | M | floor | z | dr | rowsum | colsum], each [T]
  let gate = 2u * NH;

  // b_t = cumsum logsigmoid(f), g_t = i_t - b_t, M_t = max_{s<=t} g_s; chunks of CW steps with carries.
  var sumCarry = 0.0; var maxCarry = LOWEST;
  for (var c0 = 0u; c0 < T; c0 += CW) {
    let t = c0 + lid; let n = b * T + t;
    var x = 0.0;
    if (t < T) { x = logsig(gates[n * gate + NH + j]); }
    sc[lid] = x;
    workgroupBarrier();${scan((a, b) => `${a} + ${b}`, '0.0')}
    let bt = sumCarry + sc[lid];
    sumCarry += sc[CW - 1u];
    workgroupBarrier();
    var g = LOWEST;
    if (t < T) { g = gates[n * gate + j] - bt; }
    sc[lid] = g;
    workgroupBarrier();${scan((a, b) => `max(${a}, ${b})`, 'LOWEST')}
    let M = max(maxCarry, sc[lid]);
    maxCarry = max(maxCarry, sc[CW - 1u]);
    workgroupBarrier();
    if (t < T) {
      scratch[sb + t] = g;
      scratch[sb + T + t] = M;
      scratch[sb + 2u * T + t] = exp(min(-(bt + M), CAP));
    }
  }
  storageBarrier();

  // Rows: dq_t = sum_s (gv/z + dr) D k_s = A/z + dr Bk with gv = dh~_t . v_s, gathered in one pass;
  // k, v and g of SC steps at a time are staged in workgroup memory.
  for (var c0 = 0u; c0 < T; c0 += CW) {
    let t = min(c0 + lid, T - 1u);
    let live = c0 + lid < T;
    let qo = (b * T + t) * H + j * DH;
    let Mt = scratch[sb + T + t];
    ${zeroedArray('qt', dh)} ${zeroedArray('gt', dh)}
    ${zeroedArray('A', dh)} ${zeroedArray('Bk', dh)}
    for (var e = 0u; e < DH; e++) { qt[e] = q[qo + e]; gt[e] = dht[qo + e]; }
    var r = 0.0; var rowA = 0.0;
    let last = min(c0 + CW, T);
    for (var s0 = 0u; s0 < last; s0 += SC) {
      for (var p = lid; p < SC * DH; p += CW) {
        let s = min(s0 + p / DH, T - 1u);
        let ko = (b * T + s) * H + j * DH + p % DH;
        sa[p] = kk[ko]; sv[p] = v[ko];
      }
      for (var p = lid; p < SC; p += CW) { s1[p] = scratch[sb + min(s0 + p, T - 1u)]; }
      workgroupBarrier();
      if (live && t >= s0) {
        let cnt = min(SC, t + 1u - s0);
        for (var sl = 0u; sl < cnt; sl++) {
          let D = exp(s1[sl] - Mt);
          var qk = 0.0; var gv = 0.0;
          for (var e = 0u; e < DH; e++) { qk += qt[e] * sa[sl * DH + e]; gv += gt[e] * sv[sl * DH + e]; }
          r += qk * D;
          rowA += gv * qk * D;
          for (var e = 0u; e < DH; e++) { let kd = D * sa[sl * DH + e]; A[e] += gv * kd; Bk[e] += kd; }
        }
      }
      workgroupBarrier();
    }
    if (live) {
      let fl = scratch[sb + 2u * T + t];
      let z = max(abs(r), fl);
      var gh = 0.0;
      for (var e = 0u; e < DH; e++) { gh += gt[e] * ht[qo + e]; }
      // The floor holds the normaliser where |r| is below it: r then has no influence.
      var dr = 0.0;
      if (abs(r) > fl) { dr = -gh / z * sign(r); }
      let n = b * T + t;
      for (var e = 0u; e < DH; e++) { dcc[n * WC + j * DH + e] = A[e] / z + dr * Bk[e]; }
      scratch[sb + 3u * T + t] = z;
      scratch[sb + 4u * T + t] = dr;
      scratch[sb + 5u * T + t] = rowA / z + dr * r;
    }
  }
  storageBarrier();

  // Columns: dk_s = sum_t dS D q_t, dv_s = sum_t S gz_t, colsum_s = sum_t dS S; q, dh~, M, z, dr of
  // SC steps at a time staged.
  for (var c0 = 0u; c0 < T; c0 += CW) {
    let s = min(c0 + lid, T - 1u);
    let live = c0 + lid < T;
    let n = b * T + s;
    let ko = n * H + j * DH;
    let gs = scratch[sb + s];
    ${zeroedArray('ks', dh)} ${zeroedArray('vs', dh)}
    ${zeroedArray('dk', dh)} ${zeroedArray('dv', dh)}
    for (var e = 0u; e < DH; e++) { ks[e] = kk[ko + e]; vs[e] = v[ko + e]; }
    var col = 0.0;
    for (var t0 = c0; t0 < T; t0 += SC) {
      for (var p = lid; p < SC * DH; p += CW) {
        let t = min(t0 + p / DH, T - 1u);
        let qo = (b * T + t) * H + j * DH + p % DH;
        sa[p] = q[qo]; sv[p] = dht[qo];
      }
      for (var p = lid; p < SC; p += CW) {
        let t = min(t0 + p, T - 1u);
        s1[p] = scratch[sb + T + t]; s2[p] = 1.0 / scratch[sb + 3u * T + t]; s3[p] = scratch[sb + 4u * T + t];
      }
      workgroupBarrier();
      if (live) {
        let end = min(SC, T - t0);
        for (var tl = select(0u, s - t0, s > t0); tl < end; tl++) {
          let D = exp(gs - s1[tl]);
          var qk = 0.0; var gv = 0.0;
          for (var e = 0u; e < DH; e++) { qk += sa[tl * DH + e] * ks[e]; gv += sv[tl * DH + e] * vs[e]; }
          let S = qk * D;
          let dS = gv * s2[tl] + s3[tl];
          col += dS * S;
          let w1 = dS * D; let w2 = S * s2[tl];
          for (var e = 0u; e < DH; e++) { dk[e] += w1 * sa[tl * DH + e]; dv[e] += w2 * sv[tl * DH + e]; }
        }
      }
      workgroupBarrier();
    }
    if (live) {
      for (var e = 0u; e < DH; e++) {
        dcc[n * WC + H + j * DH + e] = dk[e] * KSCALE; // back through the key's 1/sqrt(dh)
        duu[n * WU + j * DH + e] = dv[e];
      }
      dcc[n * WC + 2u * H + j] = col;
      scratch[sb + 6u * T + s] = col;
    }
  }
  storageBarrier();

  // df_t = (suffix sum of rowsum - colsum) * sigmoid(-f_t): a scan over reversed time.
  var carry = 0.0;
  for (var c0 = 0u; c0 < T; c0 += CW) {
    let i = c0 + lid;
    var t = 0u;
    var x = 0.0;
    if (i < T) { t = T - 1u - i; x = scratch[sb + 5u * T + t] - scratch[sb + 6u * T + t]; }
    sc[lid] = x;
    workgroupBarrier();${scan((a, b) => `${a} + ${b}`, '0.0')}
    let acc = carry + sc[lid];
    carry += sc[CW - 1u];
    workgroupBarrier();
    if (i < T) {
      let n = b * T + t;
      dcc[n * WC + 2u * H + NH + j] = acc * sigm(-gates[n * gate + NH + j]);
    }
  }
}
`;
  return { key: `mlstm-bwd-cell-${JSON.stringify(s)}`, code };
}
