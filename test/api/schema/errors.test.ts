import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { describe, expect, it } from 'vitest';

import { createErrorFormatter, MASKED_MESSAGE } from '../../../src/api/schema/index.ts';
import { XlstmError, type ErrorCode } from '../../../src/util/errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** How graphql-js presents a resolver's throw: a located GraphQLError around the original. */
function located(original: Error): GraphQLError {
  return new GraphQLError(original.message, { originalError: original, path: ['field'] });
}

function format(error: unknown, options = {}): GraphQLFormattedError {
  const logged: unknown[] = [];
  const f = createErrorFormatter({ log: (e) => logged.push(e), ...options });
  const formatted = error instanceof GraphQLError ? error.toJSON() : { message: String(error) };
  return f(formatted, error);
}

describe('createErrorFormatter', () => {
  it.each<[ErrorCode, string]>([
    ['INVALID_INPUT', 'BAD_USER_INPUT'],
    ['CONTEXT_TOO_LONG', 'BAD_USER_INPUT'],
    ['CHECKPOINT_NOT_FOUND', 'BAD_USER_INPUT'],
    ['RUN_NOT_FOUND', 'BAD_USER_INPUT'],
    ['INVALID_CONFIG', 'INVALID_CONFIG'],
    ['CHECKPOINT_CORRUPT', 'CHECKPOINT_CORRUPT'],
    ['MODEL_NOT_LOADED', 'MODEL_NOT_LOADED'],
    ['RUN_STATE', 'RUN_STATE'],
    ['BACKEND', 'BACKEND'],
    ['CAPACITY', 'CAPACITY'],
    ['CANCELLED', 'CANCELLED'],
  ])('passes an XlstmError %s through with its message and extensions.code %s', (code, publicCode) => {
    const out = format(located(new XlstmError(code, `thing expected x, but got y.`)));
    expect(out).toEqual({ message: 'thing expected x, but got y.', path: ['field'], extensions: { code: publicCode, reason: code } });
  });

  it('masks anything unexpected as INTERNAL_SERVER_ERROR with an error id, logging the original under that id', () => {
    const logged: [unknown, string][] = [];
    const secret = new TypeError('cannot read property "password" of db');
    const out = createErrorFormatter({ log: (e, id) => logged.push([e, id]) })(located(secret).toJSON(), located(secret));
    expect(out).toEqual({ message: MASKED_MESSAGE, path: ['field'], extensions: { code: 'INTERNAL_SERVER_ERROR', errorId: expect.stringMatching(UUID) } });
    expect(JSON.stringify(out)).not.toMatch(/password/);
    expect(logged).toEqual([[secret, out.extensions?.errorId]]);
  });

  it('gives every masked error its own id', () => {
    const f = createErrorFormatter({ log: () => {} });
    const ids = Array.from({ length: 3 }, () => f({ message: 'x' }, new Error('oops')).extensions?.errorId);
    expect(new Set(ids).size).toBe(3);
  });

  it('logs the stack and the id by default', () => {
    const lines: string[] = [];
    const original = console.error;
    console.error = (line: string) => lines.push(line);
    try {
      const out = createErrorFormatter()({ message: 'x' }, new Error('kaboom'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`internal error ${String(out.extensions?.errorId)}: Error: kaboom\n    at `);
    } finally {
      console.error = original;
    }
  });

  it('adds the hidden message and stack only when exposing internals (development)', () => {
    const out = format(located(new Error('boom')), { exposeInternals: true });
    expect(out.message).toBe(MASKED_MESSAGE);
    expect(out.extensions?.exception).toMatchObject({ message: 'boom' });
  });

  it('keeps GraphQL errors raised on purpose (syntax, validation) with their code', () => {
    const validation = new GraphQLError('Cannot query field "nope" on type "Query".');
    expect(format(validation)).toEqual({ message: validation.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    const coded = new GraphQLError('slow down', { extensions: { code: 'RATE_LIMITED' } });
    expect(format(coded).extensions?.code).toBe('RATE_LIMITED');
  });

  it('reports the public code of every error it formats', () => {
    const codes: string[] = [];
    const f = createErrorFormatter({ onError: (c) => codes.push(c), log: () => {} });
    f({ message: 'x' }, located(new XlstmError('CAPACITY', 'full')));
    f({ message: 'x' }, new Error('oops'));
    expect(codes).toEqual(['CAPACITY', 'INTERNAL_SERVER_ERROR']);
  });
});
