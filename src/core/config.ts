/** The model configuration with the reference project's keys, its validation and derived sizes. */
import { XlstmError } from '../util/errors.ts';

export interface ModelConfig {
  /** V: vocabulary size, rows of the embedding and of the head. */
  readonly vocab_size: number;
  /** Repetitions of the signature; blocks = num_layers * (m + s). */
  readonly num_layers: number;
  /** [m, s]: m mLSTM blocks then s sLSTM blocks per layer. */
  readonly signature: readonly [number, number];
  /** d: the residual stream width. */
  readonly inp_dim: number;
  /** dh: width of one head. */
  readonly head_dim: number;
  /** nh: number of heads; H = nh * dh is the cell width. */
  readonly head_num: number;
  /** [pm, ps]: dm = round(pm * d) is the mLSTM inner width, P = round(ps * d) the sLSTM MLP width. */
  readonly p_factor: readonly [number, number];
  /** k: causal convolution taps over time; 0 means no convolution. */
  readonly ker_size: number;
  /** The head reuses embedding.weight (not one of the reference's keys; default false). */
  readonly tie_weights?: boolean;
}

export type BlockKind = 'm' | 's';

/** Sizes derived once from a config; blocks receive them and never recompute. */
export interface Dims {
  readonly V: number;
  readonly d: number;
  readonly nh: number;
  readonly dh: number;
  readonly H: number;
  readonly dm: number;
  readonly P: number;
  readonly k: number;
  readonly kinds: readonly BlockKind[];
}

export const MODEL_KEYS = [
  'vocab_size',
  'num_layers',
  'signature',
  'inp_dim',
  'head_dim',
  'head_num',
  'p_factor',
  'ker_size',
  'tie_weights',
] as const;

/** The reference project's model section (config/llm.yaml). */
export const REFERENCE_CONFIG: ModelConfig = Object.freeze({
  vocab_size: 50258,
  num_layers: 8,
  signature: [7, 1] as const,
  inp_dim: 64,
  head_dim: 16,
  head_num: 4,
  p_factor: [2, 1.3333333] as const,
  ker_size: 4,
});

/** Halves round up (DESIGN: dm = floor(pm*d + 0.5)), unlike Python's banker's rounding. */
export const roundHalfUp = (x: number): number => Math.floor(x + 0.5);

export function deriveDims(c: ModelConfig): Dims {
  const [m, s] = c.signature;
  const layer: BlockKind[] = [...Array<BlockKind>(m).fill('m'), ...Array<BlockKind>(s).fill('s')];
  return Object.freeze({
    V: c.vocab_size,
    d: c.inp_dim,
    nh: c.head_num,
    dh: c.head_dim,
    H: c.head_num * c.head_dim,
    dm: roundHalfUp(c.p_factor[0] * c.inp_dim),
    P: roundHalfUp(c.p_factor[1] * c.inp_dim),
    k: c.ker_size,
    kinds: Object.freeze(Array.from({ length: c.num_layers }, () => layer).flat()),
  });
}

/**
 * Checks a parsed model section and returns it frozen. `where` names the source (file and key
 * path, e.g. "config/llm.yaml: model") so every message points at the line to fix.
 */
export function validateModelConfig(raw: unknown, where = 'model config'): ModelConfig {
  const fail = (key: string, expected: string, got: unknown): never => {
    throw new XlstmError(
      'INVALID_CONFIG',
      `${where}.${key} expected ${expected}, but got ${JSON.stringify(got) ?? String(got)}.`,
    );
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new XlstmError('INVALID_CONFIG', `${where} expected a mapping of model keys, but got ${JSON.stringify(raw)}.`);
  }
  const src = raw as Record<string, unknown>;
  const unknown = Object.keys(src).filter((k) => !(MODEL_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new XlstmError(
      'INVALID_CONFIG',
      `${where} has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}. Hint: allowed keys are ${MODEL_KEYS.join(', ')}.`,
    );
  }
  const int = (key: string, value: unknown, low: number): number => {
    if (value === undefined) fail(key, `an integer >= ${low}`, 'nothing (the key is missing)');
    if (typeof value !== 'number' || !Number.isInteger(value) || value < low) fail(key, `an integer >= ${low}`, value);
    return value as number;
  };
  const pair = (key: string, value: unknown): unknown[] => {
    if (!Array.isArray(value) || value.length !== 2) fail(key, 'a list of two numbers', value);
    return value as unknown[];
  };
  const sig = pair('signature', src.signature);
  const pf = pair('p_factor', src.p_factor);
  pf.forEach((v, i) => {
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) fail(`p_factor[${i}]`, 'a positive number', v);
  });
  if (src.tie_weights !== undefined && typeof src.tie_weights !== 'boolean') fail('tie_weights', 'true or false', src.tie_weights);
  const config: ModelConfig = {
    vocab_size: int('vocab_size', src.vocab_size, 2),
    num_layers: int('num_layers', src.num_layers, 1),
    signature: [int('signature[0]', sig[0], 0), int('signature[1]', sig[1], 0)],
    inp_dim: int('inp_dim', src.inp_dim, 1),
    head_dim: int('head_dim', src.head_dim, 1),
    head_num: int('head_num', src.head_num, 1),
    p_factor: [pf[0] as number, pf[1] as number],
    ker_size: int('ker_size', src.ker_size, 0),
    ...(src.tie_weights === true ? { tie_weights: true } : {}),
  };
  if (config.signature[0] + config.signature[1] === 0) fail('signature', 'at least one block per layer', src.signature);
  const dims = deriveDims(config);
  if (dims.dm < 1) fail('p_factor[0]', `a factor giving dm = round(pm * ${config.inp_dim}) >= 1`, pf[0]);
  if (dims.P < 1) fail('p_factor[1]', `a factor giving P = round(ps * ${config.inp_dim}) >= 1`, pf[1]);
  return Object.freeze({ ...config, signature: Object.freeze(config.signature), p_factor: Object.freeze(config.p_factor) }) as ModelConfig;
}

/** The config as plain data for YAML/JSON, keys in the reference's order. */
export function configToObject(c: ModelConfig): Record<string, unknown> {
  return {
    vocab_size: c.vocab_size,
    num_layers: c.num_layers,
    signature: [...c.signature],
    inp_dim: c.inp_dim,
    head_dim: c.head_dim,
    head_num: c.head_num,
    p_factor: [...c.p_factor],
    ker_size: c.ker_size,
    ...(c.tie_weights ? { tie_weights: true } : {}),
  };
}
