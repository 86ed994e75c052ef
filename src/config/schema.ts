/** The sections of config/llm.yaml: their types, defaults and the rule each key must satisfy. */
import { configToObject, REFERENCE_CONFIG, validateModelConfig, type ModelConfig } from '../core/config.ts';

export type LrSchedule = 'constant' | 'cosine' | 'linear';

export interface LlmConfig {
  /** Seed of every random stream of a run (init, shuffling, sampling). */
  readonly seed_everything: number;
  readonly model: ModelConfig;
  readonly tokenizer: { readonly name: 'gpt2' };
  readonly optimizer: {
    /** Peak learning rate of AdamW. */
    readonly lr: number;
    readonly betas: readonly [number, number];
    readonly weight_decay: number;
    readonly eps: number;
  };
  readonly data: {
    /** File or folder of text. */
    readonly root: string;
    /** Tokens per training row. */
    readonly max_length: number;
    /** Rows per optimizer micro-batch (over all devices). */
    readonly batch_size: number;
    /** Bytes per streaming read from disk. */
    readonly read_chunk: number;
    /** Fraction of rows held out for validation (0: none). */
    readonly val_split: number;
  };
  readonly trainer: {
    /** Optimizer steps to run; null: no step limit (max_epochs decides). */
    readonly max_steps: number | null;
    /** Passes over the data; null: no epoch limit (max_steps decides). */
    readonly max_epochs: number | null;
    readonly devices: number;
    /** Global gradient-norm clip; 0 turns clipping off. */
    readonly grad_clip: number;
    readonly accumulate_grad_batches: number;
    readonly warmup_steps: number;
    readonly lr_schedule: LrSchedule;
    /** Final learning rate as a fraction of lr (cosine and linear schedules). */
    readonly min_lr_ratio: number;
    /** Optimizer steps between validations. */
    readonly val_check_interval: number;
    readonly log_every_n_steps: number;
    readonly checkpoint: {
      readonly save_last: boolean;
      /** Keep the k checkpoints of lowest validation loss; 0 keeps none by rank. */
      readonly save_top_k: number;
      /** Save every n optimizer steps; 0 turns periodic saves off. */
      readonly every_n_steps: number;
      readonly dir: string;
    };
  };
  readonly inference: {
    readonly prompts: readonly string[];
    /** Tokens generated per prompt. */
    readonly token_lim: number;
    /** Sample among the k most likely tokens; 0 turns top-k off. */
    readonly use_top_k: number;
    /** Softmax temperature; 0 means greedy. */
    readonly temperature: number;
  };
}

/** The defaults: config/llm.yaml repeats them, and a test keeps the two equal. */
export const DEFAULT_LLM_CONFIG: LlmConfig = deepFreeze({
  seed_everything: 0,
  // A copy validated by core: REFERENCE_CONFIG's own lists are not frozen.
  model: validateModelConfig(configToObject(REFERENCE_CONFIG), 'REFERENCE_CONFIG'),
  tokenizer: { name: 'gpt2' },
  optimizer: { lr: 1e-3, betas: [0.9, 0.95], weight_decay: 0.1, eps: 1e-8 },
  data: { root: 'data/corpus', max_length: 256, batch_size: 16, read_chunk: 65536, val_split: 0.05 },
  trainer: {
    max_steps: 1000,
    max_epochs: null,
    devices: 1,
    grad_clip: 1,
    accumulate_grad_batches: 1,
    warmup_steps: 100,
    lr_schedule: 'cosine',
    min_lr_ratio: 0.1,
    val_check_interval: 200,
    log_every_n_steps: 10,
    checkpoint: { save_last: true, save_top_k: 1, every_n_steps: 500, dir: 'checkpoints' },
  },
  inference: { prompts: ['Once upon a time', 'In a galaxy far far away'], token_lim: 128, use_top_k: 50, temperature: 1 },
} satisfies LlmConfig);

/** Freezes a plain-data tree in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** One key's rule: what it must be (for messages) and the test. */
export interface Leaf {
  readonly kind: 'leaf';
  readonly expected: string;
  readonly ok: (v: unknown) => boolean;
}
export interface Section {
  readonly kind: 'section';
  readonly fields: Readonly<Record<string, Rule>>;
}
/** The model section: merged over REFERENCE_CONFIG, then core's validateModelConfig. */
export interface ModelRule {
  readonly kind: 'model';
}
export type Rule = Leaf | Section | ModelRule;

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function int(min: number, opts: { max?: number; nullable?: boolean } = {}): Leaf {
  const range = opts.max === undefined ? `>= ${min}` : `in [${min}, ${opts.max}]`;
  return {
    kind: 'leaf',
    expected: `an integer ${range}${opts.nullable ? ' or null' : ''}`,
    ok: (v) =>
      (opts.nullable === true && v === null) ||
      (Number.isSafeInteger(v) && (v as number) >= min && (opts.max === undefined || (v as number) <= opts.max)),
  };
}

/** A finite number with `lo` (open: excluded) and optionally `hi`. */
function num(lo: number, loOpen: boolean, hi?: number, hiOpen = false): Leaf {
  const expected =
    hi === undefined ? `a number ${loOpen ? '>' : '>='} ${lo}` : `a number in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;
  return {
    kind: 'leaf',
    expected,
    ok: (v) => isNum(v) && (loOpen ? v > lo : v >= lo) && (hi === undefined || (hiOpen ? v < hi : v <= hi)),
  };
}

const oneOf = (values: readonly string[]): Leaf => ({
  kind: 'leaf',
  expected: `one of ${values.join(', ')}`,
  ok: (v) => typeof v === 'string' && values.includes(v),
});
const bool: Leaf = { kind: 'leaf', expected: 'true or false', ok: (v) => typeof v === 'boolean' };
const path: Leaf = { kind: 'leaf', expected: 'a non-empty string', ok: (v) => typeof v === 'string' && v.length > 0 };
const betas: Leaf = {
  kind: 'leaf',
  expected: 'a list of two numbers in [0, 1)',
  ok: (v) => Array.isArray(v) && v.length === 2 && v.every((b) => isNum(b) && b >= 0 && b < 1),
};
const strings: Leaf = {
  kind: 'leaf',
  expected: 'a list of strings',
  ok: (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
};
const section = (fields: Record<string, Rule>): Section => ({ kind: 'section', fields });

export const LLM_SCHEMA: Section = section({
  seed_everything: int(0, { max: 4294967295 }),
  model: { kind: 'model' },
  tokenizer: section({ name: oneOf(['gpt2']) }),
  optimizer: section({ lr: num(0, true), betas, weight_decay: num(0, false), eps: num(0, true) }),
  data: section({ root: path, max_length: int(1), batch_size: int(1), read_chunk: int(1), val_split: num(0, false, 1, true) }),
  trainer: section({
    max_steps: int(1, { nullable: true }),
    max_epochs: int(1, { nullable: true }),
    devices: int(1),
    grad_clip: num(0, false),
    accumulate_grad_batches: int(1),
    warmup_steps: int(0),
    lr_schedule: oneOf(['constant', 'cosine', 'linear']),
    min_lr_ratio: num(0, false, 1),
    val_check_interval: int(1),
    log_every_n_steps: int(1),
    checkpoint: section({ save_last: bool, save_top_k: int(0), every_n_steps: int(0), dir: path }),
  }),
  inference: section({ prompts: strings, token_lim: int(1), use_top_k: int(0), temperature: num(0, false) }),
});
