import { describe, expect, it } from 'vitest';

import { AccessPolicy, parseTokenList, type Principal } from '../../../src/api/http/index.ts';
import { XlstmError } from '../../../src/util/errors.ts';

const ADMIN = 'adm1n-t0ken.with~chars+/=';
const READER = 'r3ad3r';

describe('parseTokenList', () => {
  it('reads the environment form and the file form (new lines, comments, blank lines)', () => {
    expect(parseTokenList(`${ADMIN}:admin,${READER}:read`, 'XLSTM_API_TOKENS')).toEqual([
      { token: ADMIN, scope: 'admin' },
      { token: READER, scope: 'read' },
    ]);
    const file = `# who may call the server\n${ADMIN}:admin\n\n  ${READER} : read  \r\n# the end\n`;
    expect(parseTokenList(file, 'tokens.txt')).toEqual([
      { token: ADMIN, scope: 'admin' },
      { token: READER, scope: 'read' },
    ]);
    expect(parseTokenList('', 'empty')).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ['no scope', 'secretvalue1', /^T entry 1 expected TOKEN:SCOPE \(scope read or admin\), but got no scope\. Hint:/],
    ['an unknown scope', 'secretvalue1:write', /^T entry 1 scope expected one of read, admin, but got "write"\. Hint:/],
    ['characters a header cannot carry', 'secret value1:read', /^T entry 1 token expected letters, digits and \. _ ~ \+ \/ = -, but got other characters\. Hint:/],
    ['a repeated token', 'secretvalue1:read,secretvalue1:admin', /^T entry 2 expected a token not listed before, but got a repeat\. Hint:/],
  ])('refuses %s with INVALID_CONFIG, without printing the token', (_name, text, message) => {
    let error: unknown;
    try {
      parseTokenList(text, 'T');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(XlstmError);
    expect((error as XlstmError).code).toBe('INVALID_CONFIG');
    expect((error as XlstmError).message).toMatch(message);
    expect((error as XlstmError).message).not.toContain('secret');
  });
});

describe('AccessPolicy', () => {
  const tokens = parseTokenList(`${ADMIN}:admin,${READER}:read`, 'test');
  const strict = new AccessPolicy(tokens);
  const publicRead = new AccessPolicy(tokens, { publicRead: true });
  const open = AccessPolicy.open();

  it('lets everyone do everything when no token is configured', () => {
    expect(open.enabled).toBe(false);
    const p = open.authenticate(undefined) as Principal;
    expect(p).toEqual({ id: 'open', scope: 'admin' });
    expect(open.authorize(p, 'mutation')).toBeNull();
  });

  it.each<[string, unknown, string | null]>([
    ['an admin bearer token', `Bearer ${ADMIN}`, 'admin'],
    ['a read bearer token, scheme in any case, extra spaces', `  bEaReR   ${READER} `, 'read'],
    ['a bare token (graphql-ws connectionParams)', READER, 'read'],
    ['no token', undefined, null],
    ['an empty header', '', null],
    ['an unknown token', 'Bearer not-a-token', null],
    ['a token with a suffix', `Bearer ${ADMIN}x`, null],
    ['a prefix of a token', `Bearer ${ADMIN.slice(0, -1)}`, null],
    ['two words after Bearer', `Bearer ${ADMIN} ${ADMIN}`, null],
    ['a number', 42, null],
  ])('authenticates %s', (_name, credential, scope) => {
    const p = strict.authenticate(credential);
    if (scope === null) {
      expect(p).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
      expect((p as { message: string }).message).toMatch(/^this request expected .+, but got .+\. Hint: send Authorization: Bearer TOKEN/);
    } else {
      expect(p).toMatchObject({ scope, id: expect.stringMatching(/^token:[0-9a-f]{8}$/) });
      expect(JSON.stringify(p)).not.toContain(scope === 'admin' ? ADMIN : READER);
    }
  });

  it('gives each token its own stable id', () => {
    const a = strict.authenticate(ADMIN) as Principal;
    const r = strict.authenticate(READER) as Principal;
    expect(a.id).not.toBe(r.id);
    expect((strict.authenticate(`Bearer ${ADMIN}`) as Principal).id).toBe(a.id);
    expect((new AccessPolicy(tokens).authenticate(ADMIN) as Principal).id).toBe(a.id);
  });

  it('serves callers without a token as anonymous readers only where reads are public, and still refuses a wrong token', () => {
    expect(publicRead.authenticate(undefined)).toEqual({ id: 'anonymous', scope: null });
    expect(publicRead.authenticate('Bearer typo')).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  const admin = strict.authenticate(ADMIN) as Principal;
  const reader = strict.authenticate(READER) as Principal;
  const anonymous = publicRead.authenticate(undefined) as Principal;
  it.each<[string, AccessPolicy, Principal, 'query' | 'mutation' | 'subscription', string | null]>([
    ['admin', strict, admin, 'query', null],
    ['admin', strict, admin, 'subscription', null],
    ['admin', strict, admin, 'mutation', null],
    ['read', strict, reader, 'query', null],
    ['read', strict, reader, 'subscription', null],
    ['read', strict, reader, 'mutation', 'FORBIDDEN'],
    ['anonymous (public reads)', publicRead, anonymous, 'query', null],
    ['anonymous (public reads)', publicRead, anonymous, 'subscription', null],
    ['anonymous (public reads)', publicRead, anonymous, 'mutation', 'UNAUTHENTICATED'],
    ['anonymous (reads not public)', strict, anonymous, 'query', 'UNAUTHENTICATED'],
  ])('authorizes %s for a %s (%s)', (_who, policy, principal, operation, code) => {
    const denial = policy.authorize(principal, operation);
    if (code === null) expect(denial).toBeNull();
    else expect(denial).toMatchObject({ code, status: code === 'FORBIDDEN' ? 403 : 401 });
  });

  it('says what scope a mutation needs when a read token asks', () => {
    expect(strict.authorize(reader, 'mutation')?.message).toBe(
      'this operation expected a token with scope admin (every mutation needs one), but got a token with scope read. Hint: ask for an admin token.',
    );
  });
});
