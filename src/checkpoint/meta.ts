/** meta.json of a checkpoint folder: its identity, lineage, training progress and the weights' checksum. */
import { XlstmError, type ErrorCode } from '../util/errors.ts';
import type { TensorDtype } from './safetensors.ts';

export const META_FORMAT_VERSION = 1;

/** Free-form record of how a checkpoint was made; the named fields are conventional, others are kept as they are. */
export interface Provenance {
  readonly command?: string;
  readonly data?: string;
  readonly notes?: string;
  readonly [key: string]: unknown;
}

export interface Meta {
  readonly format_version: 1;
  readonly id: string;
  /** The checkpoint this one was trained from, or null for a fresh initialisation. */
  readonly parent: string | null;
  readonly run_id: string | null;
  readonly step: number;
  readonly tokens_seen: number;
  readonly train_loss: number | null;
  readonly val_loss: number | null;
  /** ISO 8601 time of the save. */
  readonly created: string;
  /** Lowercase hex sha256 of model.safetensors. */
  readonly sha256: string;
  /** Storage type of the weights (we write F32 or F16; a synthesised meta may report BF16 or F64). */
  readonly dtype: TensorDtype;
  readonly provenance?: Provenance;
}

const KEYS = [
  'format_version',
  'id',
  'parent',
  'run_id',
  'step',
  'tokens_seen',
  'train_loss',
  'val_loss',
  'created',
  'sha256',
  'dtype',
  'provenance',
] as const;

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const SHA256 = /^[0-9a-f]{64}$/;
const DTYPES = ['F32', 'F16', 'BF16', 'F64'];

const show = (v: unknown): string => {
  const text = v === undefined ? 'nothing (the key is missing)' : (JSON.stringify(v) ?? String(v));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/**
 * Checks a parsed meta.json (`file` names it in messages) and returns it frozen. An unknown
 * format_version is reported before anything else, since the other keys may mean something else there.
 */
export function validateMeta(raw: unknown, file: string): Meta {
  return checkMeta(raw, file, 'CHECKPOINT_CORRUPT');
}

/** The same checks for a meta about to be written; failures are the caller's (`code`). */
export function checkMeta(raw: unknown, where: string, code: ErrorCode): Meta {
  const fail = (key: string, expected: string, got: unknown, hint = ''): never => {
    throw new XlstmError(code, `${where}: ${key} expected ${expected}, but got ${show(got)}.${hint}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new XlstmError(code, `${where} expected a JSON object of checkpoint metadata, but got ${show(raw)}.`);
  }
  const m = raw as Record<string, unknown>;
  if (m.format_version !== META_FORMAT_VERSION) {
    fail(
      'format_version',
      String(META_FORMAT_VERSION),
      m.format_version,
      ' Hint: this checkpoint was written by another version of the platform; load it with that version or re-save it.',
    );
  }
  const unknown = Object.keys(m).filter((k) => !(KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new XlstmError(
      code,
      `${where} has unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}. Hint: allowed keys are ${KEYS.join(', ')}; put anything else under provenance.`,
    );
  }
  const text = (key: string, orNull = false): string => {
    const v = m[key];
    if (typeof v !== 'string' || v.length === 0) fail(key, orNull ? 'a non-empty string or null' : 'a non-empty string', v);
    return v as string;
  };
  const textOrNull = (key: string): string | null => (m[key] === null ? null : text(key, true));
  const count = (key: string): number => {
    const v = m[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(key, 'an integer >= 0', v);
    return v as number;
  };
  const loss = (key: string): number | null => {
    const v = m[key];
    if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) fail(key, 'a finite number or null', v);
    return v as number | null;
  };
  const created = text('created');
  if (!ISO_TIME.test(created) || Number.isNaN(Date.parse(created))) fail('created', 'an ISO 8601 time such as 2025-01-31T12:00:00.000Z', created);
  const sha256 = text('sha256');
  if (!SHA256.test(sha256)) fail('sha256', '64 lowercase hex digits', sha256);
  if (!DTYPES.includes(m.dtype as string)) fail('dtype', `one of ${DTYPES.join(', ')}`, m.dtype);
  const provenance = m.provenance;
  if (provenance !== undefined) {
    if (typeof provenance !== 'object' || provenance === null || Array.isArray(provenance)) {
      fail('provenance', 'an object such as {command, data, notes}', provenance);
    }
    // provenance is stored as JSON: a cycle or a BigInt could not be written.
    let json: string | undefined;
    try {
      json = JSON.stringify(provenance);
    } catch {
      json = undefined;
    }
    if (json === undefined) fail('provenance', 'plain JSON data', String(provenance));
    for (const key of ['command', 'data', 'notes']) {
      const v = (provenance as Record<string, unknown>)[key];
      if (v !== undefined && typeof v !== 'string') fail(`provenance.${key}`, 'a string', v);
    }
  }
  const meta: Meta = {
    format_version: META_FORMAT_VERSION,
    id: text('id'),
    parent: textOrNull('parent'),
    run_id: textOrNull('run_id'),
    step: count('step'),
    tokens_seen: count('tokens_seen'),
    train_loss: loss('train_loss'),
    val_loss: loss('val_loss'),
    created,
    sha256,
    dtype: m.dtype as TensorDtype,
    ...(provenance !== undefined ? { provenance: deepFreeze(JSON.parse(JSON.stringify(provenance)) as Provenance) } : {}),
  };
  return Object.freeze(meta);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
