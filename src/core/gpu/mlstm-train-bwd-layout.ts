/**
 * Sizes and buffer layout shared by the WGSL programs of the mLSTM training block's backward pass
 * (mlstm-train-backward.ts): the program spec, the segments of the packed weight-gradient partials
 * and the WGSL header that declares the sizes as constants or, on software adapters, as private
 * variables read from the uniforms (gpuOptions.opaqueLoopBounds).
 *
 * Rows are n = b*T + t. Row-kernel workgroup w covers rows [w*SUB*RT, (w+1)*SUB*RT) in SUB
 * sub-tiles of RT rows and writes its sums over them (X^T dY and column sums) into row w of the
 * partials `part` [NT, G]; a last pass adds the NT rows in a fixed order. Two-level float32 sums,
 * deterministic, with no atomics.
 */

/** What one set of backward programs is generated for. */
export interface BwdSpec {
  readonly d: number;
  readonly dm: number;
  readonly nh: number;
  readonly dh: number;
  readonly k: number;
  /** Rows per sub-tile of the row kernels. */
  readonly RT: number;
  /** Threads per workgroup of the row kernels. */
  readonly WG: number;
  /** Columns of a weight staged per step of the input-gradient products (mlstm-train-bwd-product.ts). */
  readonly MC: number;
  /** Threads per workgroup of the cell kernel (one (sequence, head) pair per workgroup). */
  readonly CW: number;
  /** Time steps the cell kernel stages in workgroup memory at once (at most CW). */
  readonly SC: number;
  readonly opaque: boolean;
}

/** Threads per workgroup of the pass that adds the partials. */
export const FINAL_WG = 256;

export interface Segment {
  readonly name: string;
  readonly shape: number[];
  readonly offset: number;
  readonly size: number;
}

/**
 * The weight gradients in the host kernel's output order (dx excluded), each a segment of one row
 * of the partials: normW, normB, wUp, bUp, (convW, convB), wC, bC, wU, bU, outW, outB, wDown, bDown.
 */
export function gradSegments(s: Pick<BwdSpec, 'd' | 'dm' | 'nh' | 'dh' | 'k'>): { segs: Segment[]; G: number } {
  const { d, dm, nh, dh, k } = s;
  const H = nh * dh;
  const shapes: [string, number[]][] = [
    ['normW', [d]],
    ['normB', [d]],
    ['wUp', [d, dm + H]],
    ['bUp', [dm + H]],
    ...(k > 0
      ? ([
          ['convW', [k, dm]],
          ['convB', [dm]],
        ] as [string, number[]][])
      : []),
    ['wC', [dm, 3 * H + 2 * nh]],
    ['bC', [2 * H + 2 * nh]],
    ['wU', [dm, 2 * H]],
    ['bU', [2 * H]],
    ['outW', [H]],
    ['outB', [H]],
    ['wDown', [H, d]],
    ['bDown', [d]],
  ];
  let offset = 0;
  const segs = shapes.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const seg = { name, shape, offset, size };
    offset += size;
    return seg;
  });
  return { segs, G: offset };
}

/** WGSL float literal. */
export const f32 = (x: number): string => (Number.isInteger(x) ? `${x}.0` : `${x}`);

/** `var<storage>` declarations: written buffers first (read_write), then read ones, then the uniform block. */
export function bindings(written: readonly string[], read: readonly string[], uniform = 'U'): string {
  const w = written.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n}: array<f32>;`);
  const r = read.map((n, i) => `@group(0) @binding(${written.length + i}) var<storage, read> ${n}: array<f32>;`);
  return [...w, ...r, `@group(0) @binding(${written.length + read.length}) var<uniform> u: ${uniform};`].join('\n');
}

/** Uniform block of the row kernels: N, T, SUB, NT, then the sizes (read only on software adapters). */
export const ROW_UNIFORM = 'struct U { N: i32, T: i32, SUB: i32, NT: i32, D_: i32, DM_: i32, H_: i32, NH_: i32, DH_: i32, K_: i32, p0: i32, p1: i32 }';

/** The uniform values matching ROW_UNIFORM. */
export function rowUniforms(s: BwdSpec, N: number, T: number, SUB: number, NT: number): number[] {
  return [N, T, SUB, NT, s.d, s.dm, s.nh * s.dh, s.nh, s.dh, s.k, 0, 0];
}

/**
 * The sizes D, DM, H, NH, DH, K and the derived widths WC (q|k|i|f|skip), WU (v|o), WUP (u|r), BC
 * (biased columns of WC, also where skip starts): constants, or private variables that `initSizes()`
 * sets from the uniforms so that a software adapter's compiler does not unroll the loops over them.
 */
export function sizes(s: BwdSpec): string {
  const H = s.nh * s.dh;
  const v = { D: s.d, DM: s.dm, H, NH: s.nh, DH: s.dh, K: s.k, WC: 3 * H + 2 * s.nh, WU: 2 * H, WUP: s.dm + H, BC: 2 * H + 2 * s.nh };
  if (!s.opaque) {
    return `${Object.entries(v)
      .map(([n, x]) => `const ${n} = ${x}u;`)
      .join(' ')}\nfn initSizes() {}`;
  }
  return `${Object.keys(v)
    .map((n) => `var<private> ${n}: u32;`)
    .join(' ')}
fn initSizes() {
  D = u32(u.D_); DM = u32(u.DM_); H = u32(u.H_); NH = u32(u.NH_); DH = u32(u.DH_); K = u32(u.K_);
  WC = 3u * H + 2u * NH; WU = 2u * H; WUP = DM + H; BC = 2u * H + 2u * NH;
}`;
}

/** `const O_<NAME> = offset;` for every gradient segment, and G. */
export function segmentConsts(s: BwdSpec): string {
  const { segs, G } = gradSegments(s);
  return [...segs.map((g) => `const O_${g.name.toUpperCase()} = ${g.offset}u;`), `const G = ${G}u;`].join('\n');
}

/** Adds a sub-tile's sum into the workgroup's partial (the first sub-tile overwrites stale memory). */
export const ACCUMULATE = `if (sub == 0u) { part[base + at] = acc; } else { part[base + at] += acc; }`;
