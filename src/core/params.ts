/**
 * The parameter list of a model: every tensor's checkpoint name, shape (PyTorch layout: linear
 * weights are [out, in]) and initialiser. The one place tensor names are spelled.
 */
import type { Dims } from './config.ts';

export type Init =
  | { readonly kind: 'normal'; readonly std: number }
  | { readonly kind: 'zeros' }
  | { readonly kind: 'ones' }
  /** value[j] = from + (to - from) * j / (n - 1), or `from` when n = 1. */
  | { readonly kind: 'linspace'; readonly from: number; readonly to: number };

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
}

const small = (fanIn: number): Init => ({ kind: 'normal', std: Math.sqrt(2 / (5 * fanIn)) });
const zeros: Init = { kind: 'zeros' };
const ones: Init = { kind: 'ones' };

function linear(prefix: string, fanIn: number, fanOut: number, weight: Init = small(fanIn), bias: Init | null = zeros): ParamSpec[] {
  const out: ParamSpec[] = [{ name: `${prefix}.weight`, shape: [fanOut, fanIn], init: weight }];
  if (bias) out.push({ name: `${prefix}.bias`, shape: [fanOut], init: bias });
  return out;
}

function norm(prefix: string, width: number): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [width], init: ones },
    { name: `${prefix}.bias`, shape: [width], init: zeros },
  ];
}

function conv(prefix: string, channels: number, k: number): ParamSpec[] {
  if (k === 0) return [];
  return [
    { name: `${prefix}.weight`, shape: [channels, k], init: small(k) },
    { name: `${prefix}.bias`, shape: [channels], init: zeros },
  ];
}

/** Parameters of block i, an mLSTM block. */
export function mlstmParams(i: number, dims: Dims): ParamSpec[] {
  const { d, dm, H, nh, k } = dims;
  const p = `blocks.${i}`;
  const downStd: Init = { kind: 'normal', std: 2 / (dims.kinds.length * Math.sqrt(d)) };
  return [
    ...norm(`${p}.norm`, d),
    ...linear(`${p}.up_l`, d, dm),
    ...linear(`${p}.up_r`, d, H),
    ...conv(`${p}.conv`, dm, k),
    ...linear(`${p}.q`, dm, H),
    ...linear(`${p}.k`, dm, H),
    ...linear(`${p}.v`, dm, H),
    ...linear(`${p}.igate`, dm, nh, small(dm), { kind: 'normal', std: 0.1 }),
    ...linear(`${p}.fgate`, dm, nh, zeros, { kind: 'linspace', from: 3, to: 6 }),
    ...linear(`${p}.ogate`, dm, H),
    ...linear(`${p}.skip`, dm, H, small(dm), null),
    ...norm(`${p}.outnorm`, H),
    ...linear(`${p}.down`, H, d, downStd),
  ];
}

/** Parameters of block i, an sLSTM block. */
export function slstmParams(i: number, dims: Dims): ParamSpec[] {
  const { d, H, nh, dh, P, k } = dims;
  const p = `blocks.${i}`;
  const downStd: Init = { kind: 'normal', std: 2 / (dims.kinds.length * Math.sqrt(d)) };
  const gates = (['W_i', 'W_f', 'W_z', 'W_o'] as const).flatMap((g) => linear(`${p}.${g}`, d, H));
  const recurrent = (['R_i', 'R_f', 'R_z', 'R_o'] as const).map(
    (r): ParamSpec => ({ name: `${p}.${r}.weight`, shape: [nh, dh, dh], init: small(dh) }),
  );
  return [
    ...norm(`${p}.norm`, d),
    ...conv(`${p}.conv`, d, k),
    ...gates,
    ...recurrent,
    ...norm(`${p}.outnorm`, H),
    ...linear(`${p}.up`, H, 2 * P),
    ...linear(`${p}.down`, P, d, downStd),
  ];
}

/** Every parameter of the model, in checkpoint order. head.weight is listed even when tied. */
export function modelParams(dims: Dims): ParamSpec[] {
  const { V, d } = dims;
  return [
    { name: 'embedding.weight', shape: [V, d], init: small(d) },
    ...dims.kinds.flatMap((kind, i) => (kind === 'm' ? mlstmParams(i, dims) : slstmParams(i, dims))),
    ...norm('norm_f', d),
    { name: 'head.weight', shape: [V, d], init: small(d) },
  ];
}
