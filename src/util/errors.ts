/** The one error type of the platform: a public `code` plus a message that says what was expected. */
export type ErrorCode =
  | 'INVALID_CONFIG'
  | 'INVALID_INPUT'
  | 'CONTEXT_TOO_LONG'
  | 'CHECKPOINT_NOT_FOUND'
  | 'CHECKPOINT_CORRUPT'
  | 'MODEL_NOT_LOADED'
  | 'RUN_NOT_FOUND'
  | 'RUN_STATE'
  | 'BACKEND'
  | 'CAPACITY'
  | 'CANCELLED';

export class XlstmError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export function isXlstmError(e: unknown, code?: ErrorCode): e is XlstmError {
  return e instanceof XlstmError && (code === undefined || e.code === code);
}
