/**
 * The WGSL of sample.ts's kernel: one workgroup of WG threads per row of logits [B, V]; outputs ids [B],
 * logprobs [B] and the kept set's cut [B, 3] (keys a, b and id jt: an id j with key k is kept when
 * (k > a or (k = a and j <= jt)) and k >= b), inputs the logits and the settings [B, PARAMS].
 */
import type { GpuProgram } from './device.ts';

export const WG = 256;
/** Per-row settings: temperature, topK, topP, u. */
export const PARAMS = 4;
/** Bisection steps: enough for any range of 32-bit keys. A uniform, so that no compiler unrolls the loop. */
export const HALVINGS = 32;

export const SAMPLE_PROGRAM: GpuProgram = {
  key: 'sample',
  code: /* wgsl */ `
struct Dims { B: u32, V: u32, C: u32, halvings: u32 }
@group(0) @binding(0) var<storage, read_write> ids: array<i32>;
@group(0) @binding(1) var<storage, read_write> logprobs: array<f32>;
@group(0) @binding(2) var<storage, read_write> cuts: array<u32>;
@group(0) @binding(3) var<storage, read> logits: array<f32>;
@group(0) @binding(4) var<storage, read> params: array<f32>;
@group(0) @binding(5) var<uniform> u: Dims;
const WG = ${WG}u;
const NONE = 0xffffffffu;
/** keyOf(-Infinity): rows whose maximum is no larger have no distribution. */
const NEG_INF_KEY = 0x007fffffu;
/** The largest 1/temperature in float32: (l - max) invT stays finite or -Infinity, never NaN. */
const MAX_INV_T = 1e30;
var<workgroup> redU: array<u32, ${WG}>;
var<workgroup> redI: array<u32, ${WG}>;
var<workgroup> redN: array<u32, ${WG}>;
var<workgroup> redF: array<f32, ${WG}>;
/**
 * Results one thread writes for all, each written once: on Dawn's OpenGL ES backend (Mesa) a load
 * from workgroup memory may be moved past a later barrier to where its value is used, so a value
 * that is read now but used later must live where nothing overwrites it (hence also the barrier
 * that opens each reduction, which keeps the previous one's loads ahead of the new stores).
 */
var<workgroup> found: u32;
var<workgroup> rowLogZ: f32;
var<workgroup> nucleusMass: f32;

/** The float's bits as an unsigned key in the floats' order (-Infinity < finite < +Infinity). */
fn keyOf(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

fn sumU(lid: u32, v: u32) -> u32 {
  workgroupBarrier();
  redU[lid] = v;
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    workgroupBarrier();
    if (lid < w) { redU[lid] += redU[lid + w]; }
  }
  workgroupBarrier();
  let r = redU[0];
  workgroupBarrier();
  return r;
}

fn sumF(lid: u32, v: f32) -> f32 {
  workgroupBarrier();
  redF[lid] = v;
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    workgroupBarrier();
    if (lid < w) { redF[lid] += redF[lid + w]; }
  }
  workgroupBarrier();
  let r = redF[0];
  workgroupBarrier();
  return r;
}

/** Whether id j with key k is among the top-k cut: logit above a's, or equal to it up to id jt. */
fn inCut(j: u32, k: u32, a: u32, jt: u32) -> bool { return k > a || (k == a && j <= jt); }

/** How many ids have logit key >= x; end 0 skips the pass (the reduction's barriers still run). */
fn countAtLeast(lid: u32, base: u32, x: u32, end: u32) -> u32 {
  var c = 0u;
  for (var j = lid; j < end; j += WG) { if (keyOf(logits[base + j]) >= x) { c += 1u; } }
  return sumU(lid, c);
}

/** The tempered weight of the cut's ids with logit key >= x (end as in countAtLeast). */
fn massAtLeast(lid: u32, base: u32, a: u32, jt: u32, x: u32, mx: f32, invT: f32, end: u32) -> f32 {
  var s = 0.0;
  for (var j = lid; j < end; j += WG) {
    let l = logits[base + j];
    let k = keyOf(l);
    if (inCut(j, k, a, jt) && k >= x) { s += exp((l - mx) * invT); }
  }
  return sumF(lid, s);
}

/**
 * Bisection over keys in [lo, hi], where the smallest key always suffices: the middle of the
 * remaining range, rounded up (so that the range shrinks when it holds two keys). 32 halvings
 * exhaust any range of 32-bit keys; the loop count is fixed because its body holds barriers,
 * and WGSL's uniformity analysis does not take values read from workgroup memory for uniform.
 */
fn midOf(lo: u32, hi: u32) -> u32 {
  let d = hi - lo;
  return lo + (d >> 1u) + (d & 1u);
}

/** The largest key in [lo, hi] that at least k ids reach: the k-th largest when lo is the smallest. */
fn bisectCount(lid: u32, base: u32, lo0: u32, hi0: u32, k: u32) -> u32 {
  var lo = lo0; var hi = hi0;
  for (var it = 0u; it < u.halvings; it++) {
    let mid = midOf(lo, hi);
    let live = lo < hi;
    let ok = countAtLeast(lid, base, mid, select(0u, u.V, live)) >= k;
    lo = select(lo, mid, ok && live);
    hi = select(mid - 1u, hi, ok || !live);
  }
  return lo;
}

/** The largest key in [lo, hi] whose ids within the cut weigh at least goal (the cut reaches lo). */
fn bisectMass(lid: u32, base: u32, a: u32, jt: u32, lo0: u32, hi0: u32, goal: f32, mx: f32, invT: f32) -> u32 {
  var lo = lo0; var hi = hi0;
  for (var it = 0u; it < u.halvings; it++) {
    let mid = midOf(lo, hi);
    let live = lo < hi;
    let ok = massAtLeast(lid, base, a, jt, mid, mx, invT, select(0u, u.V, live)) >= goal;
    lo = select(lo, mid, ok && live);
    hi = select(mid - 1u, hi, ok || !live);
  }
  return lo;
}

fn finish(row: u32, base: u32, id: u32, logZ: f32, a: u32, jt: u32, b: u32) {
  ids[row] = i32(id);
  logprobs[row] = logits[base + id] - logZ;
  cuts[row * 3u] = a; cuts[row * 3u + 1u] = jt; cuts[row * 3u + 2u] = b;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  if (row >= u.B) { return; }
  let V = u.V;
  let base = row * V;
  let temperature = params[row * ${PARAMS}u];
  let topK = u32(params[row * ${PARAMS}u + 1u]);
  let topP = params[row * ${PARAMS}u + 2u];
  let draw = params[row * ${PARAMS}u + 3u];

  // The largest key (first id among equals) and the smallest.
  var mk = 0u; var mi = NONE; var nk = NONE;
  for (var j = lid; j < V; j += WG) {
    let k = keyOf(logits[base + j]);
    if (mi == NONE || k > mk) { mk = k; mi = j; }
    nk = min(nk, k);
  }
  redU[lid] = mk; redI[lid] = mi; redN[lid] = nk;
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    workgroupBarrier();
    if (lid < w) {
      let k2 = redU[lid + w]; let i2 = redI[lid + w];
      let i1 = redI[lid];
      if (i2 != NONE && (i1 == NONE || k2 > redU[lid] || (k2 == redU[lid] && i2 < i1))) { redU[lid] = k2; redI[lid] = i2; }
      redN[lid] = min(redN[lid], redN[lid + w]);
    }
  }
  workgroupBarrier();
  let maxKey = redU[0];
  let best = redI[0];
  let minKey = redN[0];
  // A row without a finite maximum has no distribution to draw from: its argmax stands in.
  let flat = maxKey <= NEG_INF_KEY;
  let mx = select(logits[base + best], 0.0, flat);

  // logZ of the raw logits: log-probabilities are the model's, whatever the settings.
  var s = 0.0;
  for (var j = lid; j < V; j += WG) { s += exp(logits[base + j] - mx); }
  let z = sumF(lid, s);
  if (lid == 0u) { rowLogZ = mx + log(z); }

  if (temperature == 0.0) {
    if (lid == 0u) { finish(row, base, best, rowLogZ, maxKey, best, maxKey); }
    return;
  }
  let invT = min(1.0 / temperature, MAX_INV_T);
  let C = u.C;
  let j0 = min(lid * C, V);
  let j1 = min(j0 + C, V);

  // Top-k: a = the k-th largest key; of the ids tied at a, the first (k - #above) in id order stay.
  var a = 0u;
  var jt = V;
  if (topK > 0u && topK < V) {
    a = bisectCount(lid, base, minKey, maxKey, topK);
    var above = 0u; var ties = 0u;
    for (var j = j0; j < j1; j++) {
      let k = keyOf(logits[base + j]);
      if (k > a) { above += 1u; } else if (k == a) { ties += 1u; }
    }
    var left = topK - sumU(lid, above);
    redI[lid] = ties;
    workgroupBarrier();
    if (lid == 0u) {
      var owner = 0u;
      for (var q = 0u; q < WG; q++) {
        if (redI[q] >= left) { owner = q; break; }
        left -= redI[q];
      }
      let s0 = min(owner * C, V);
      let s1 = min(s0 + C, V);
      for (var j = s0; j < s1; j++) {
        if (keyOf(logits[base + j]) == a) {
          left -= 1u;
          if (left == 0u) { found = j; break; }
        }
      }
    }
    workgroupBarrier();
    jt = found;
  }

  // Top-p: b = the largest key whose ids (within the cut) weigh at least topP of the cut.
  var b = a;
  if (topP < 1.0) {
    let total = massAtLeast(lid, base, a, jt, a, mx, invT, V);
    if (lid == 0u) { nucleusMass = topP * total; }
    workgroupBarrier();
    b = bisectMass(lid, base, a, jt, max(a, minKey), maxKey, nucleusMass, mx, invT);
  }

  // The draw: each thread weighs its id range; thread 0 finds the range holding u * total and walks it.
  var own = 0.0;
  for (var j = j0; j < j1; j++) {
    let l = logits[base + j];
    let k = keyOf(l);
    if (inCut(j, k, a, jt) && k >= b) { own += exp((l - mx) * invT); }
  }
  workgroupBarrier();
  redF[lid] = own;
  workgroupBarrier();
  if (lid == 0u) {
    var total = 0.0;
    for (var q = 0u; q < WG; q++) { total += redF[q]; }
    let goal = draw * total;
    var acc = 0.0; var owner = WG; var lastOwner = 0u;
    for (var q = 0u; q < WG; q++) {
      let sq = redF[q];
      if (sq > 0.0) {
        if (acc + sq > goal) { owner = q; break; }
        acc += sq;
        lastOwner = q;
      }
    }
    // Rounding put the goal past the last weight: the last weighted id is drawn, as the host does.
    if (owner == WG) { owner = lastOwner; acc = -3.4e38; }
    let s0 = min(owner * C, V);
    let s1 = min(s0 + C, V);
    var id = s0;
    for (var j = s0; j < s1; j++) {
      let l = logits[base + j];
      let k = keyOf(l);
      if (inCut(j, k, a, jt) && k >= b) {
        let w = exp((l - mx) * invT);
        if (w > 0.0) {
          id = j;
          acc += w;
          if (acc > goal) { break; }
        }
      }
    }
    if (flat) { finish(row, base, best, rowLogZ, maxKey, best, maxKey); } else { finish(row, base, id, rowLogZ, a, jt, b); }
  }
}
`,
};
