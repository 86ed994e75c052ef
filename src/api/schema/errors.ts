/**
 * The API's public error codes and the one formatter every error passes through on its way to a client:
 * platform errors keep their message and get a public code; anything unexpected is masked.
 */
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

import { XlstmError, type ErrorCode } from '../../util/errors.ts';

/** extensions.code values a client can see. */
export const ApiErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  INVALID_CONFIG: 'INVALID_CONFIG',
  CHECKPOINT_CORRUPT: 'CHECKPOINT_CORRUPT',
  MODEL_NOT_LOADED: 'MODEL_NOT_LOADED',
  RUN_STATE: 'RUN_STATE',
  BACKEND: 'BACKEND',
  CAPACITY: 'CAPACITY',
  CANCELLED: 'CANCELLED',
  /** No token, or one the server does not know (HTTP 401; graphql-ws closes with 4401). */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** A token whose scope does not allow the operation: a read token and a mutation (HTTP 403). */
  FORBIDDEN: 'FORBIDDEN',
  /** Too many operations per second, or too many open subscriptions, for one token or connection (HTTP 429). */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The document does not parse (or has more tokens than the server reads). */
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  /** The document does not validate: unknown fields, or past the depth, list-nesting or cost limits. */
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  /** Anything unexpected; extensions.errorId finds it in the server's log. */
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

/** Every platform code has a public one: the Record type makes a new ErrorCode a compile error here. */
const PUBLIC_CODE: Readonly<Record<ErrorCode, ApiErrorCode>> = {
  INVALID_INPUT: 'BAD_USER_INPUT',
  CONTEXT_TOO_LONG: 'BAD_USER_INPUT',
  CHECKPOINT_NOT_FOUND: 'BAD_USER_INPUT',
  RUN_NOT_FOUND: 'BAD_USER_INPUT',
  INVALID_CONFIG: 'INVALID_CONFIG',
  CHECKPOINT_CORRUPT: 'CHECKPOINT_CORRUPT',
  MODEL_NOT_LOADED: 'MODEL_NOT_LOADED',
  RUN_STATE: 'RUN_STATE',
  BACKEND: 'BACKEND',
  CAPACITY: 'CAPACITY',
  CANCELLED: 'CANCELLED',
};

export function publicCode(code: ErrorCode | 'INTERNAL'): ApiErrorCode {
  return code === 'INTERNAL' ? 'INTERNAL_SERVER_ERROR' : PUBLIC_CODE[code];
}

export const MASKED_MESSAGE = 'Internal server error';

export interface ErrorFormatterOptions {
  /** Development only: attach the hidden error's message and stack to masked errors. */
  readonly exposeInternals?: boolean;
  /** Told the public code of every error that reaches a client (for the failures metric). */
  readonly onError?: (code: string) => void;
  /** Where masked errors are written, with the id the client sees; console.error with the stack by default. */
  readonly log?: (error: unknown, errorId: string) => void;
}

export type ErrorFormatter = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

/**
 * Builds the formatter used by both transports (Apollo's formatError for HTTP, graphql-ws's onNext/onError).
 * It never throws.
 */
export function createErrorFormatter(options: ErrorFormatterOptions = {}): ErrorFormatter {
  const log = options.log ?? logInternalError;
  return (formatted, error) => {
    const out = formatOne(formatted, error, options.exposeInternals === true, log);
    options.onError?.(String(out.extensions?.code));
    return out;
  };
}

function formatOne(
  formatted: GraphQLFormattedError,
  error: unknown,
  exposeInternals: boolean,
  log: (error: unknown, errorId: string) => void,
): GraphQLFormattedError {
  const where = { ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
  const cause = rootCause(error);
  if (cause instanceof XlstmError) {
    return { message: cause.message, ...where, extensions: { code: publicCode(cause.code), reason: cause.code } };
  }
  if (cause instanceof GraphQLError) {
    // Thrown on purpose (syntax, validation, a resolver's GraphQLError): its words are meant for the client.
    const code = cause.extensions.code ?? formatted.extensions?.code ?? 'GRAPHQL_VALIDATION_FAILED';
    return { message: cause.message, ...where, extensions: { code } };
  }
  const errorId = crypto.randomUUID();
  log(cause, errorId);
  const detail =
    exposeInternals && cause instanceof Error ? { exception: { message: cause.message, stacktrace: cause.stack?.split('\n') ?? [] } } : {};
  return { message: MASKED_MESSAGE, ...where, extensions: { code: ApiErrorCode.INTERNAL_SERVER_ERROR, errorId, ...detail } };
}

/** One line a log search finds by the id the client reports, then the stack. */
export function logInternalError(error: unknown, errorId: string): void {
  console.error(`internal error ${errorId}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

/** The innermost error: resolvers' throws arrive wrapped in located GraphQLErrors, sometimes twice. */
function rootCause(error: unknown): unknown {
  let e = error;
  while (e instanceof GraphQLError && e.originalError) e = e.originalError;
  return e;
}
