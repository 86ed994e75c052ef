/**
 * Who may do what: bearer tokens with a scope (`read`: queries and generate; `admin`: everything, mutations
 * included), looked up in constant time, and the one decision both transports ask before anything runs.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import { XlstmError } from '../../util/errors.ts';

export const SCOPES = ['read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenEntry {
  readonly token: string;
  readonly scope: Scope;
}

/** The caller of one request or connection. */
export interface Principal {
  /** Stable and safe to log or key on: `token:<8 hex of its sha256>`, `anonymous` or `open`. */
  readonly id: string;
  /** null: no token (only where reads are public). */
  readonly scope: Scope | null;
}

/** Why a request is refused; HTTP status and extensions.code go together. */
export interface Denial {
  readonly code: 'UNAUTHENTICATED' | 'FORBIDDEN';
  readonly status: 401 | 403;
  readonly message: string;
}

export type OperationKind = 'query' | 'mutation' | 'subscription';

// RFC 6750's b64token alphabet, minus nothing: a token is one word a header can carry unquoted.
const TOKEN = /^[A-Za-z0-9._~+/=-]+$/;

/**
 * Reads "tokenA:admin,tokenB:read" (XLSTM_API_TOKENS) or a token file: entries separated by commas or new lines,
 * each TOKEN:SCOPE, `#` starting a comment line. `origin` names the source in errors, which never print a token.
 */
export function parseTokenList(text: string, origin: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  const items = text
    .split(/\r?\n/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');
  items.forEach((item, i) => {
    const at = item.lastIndexOf(':');
    const where = `${origin} entry ${i + 1}`;
    if (at <= 0) throw new XlstmError('INVALID_CONFIG', `${where} expected TOKEN:SCOPE (scope read or admin), but got no scope. Hint: write it as mytoken:read.`);
    const token = item.slice(0, at).trim();
    const scope = item.slice(at + 1).trim();
    if (!(SCOPES as readonly string[]).includes(scope)) {
      throw new XlstmError('INVALID_CONFIG', `${where} scope expected one of ${SCOPES.join(', ')}, but got ${JSON.stringify(scope.slice(0, 20))}. Hint: read allows queries and generate, admin every mutation too.`);
    }
    if (!TOKEN.test(token)) {
      throw new XlstmError('INVALID_CONFIG', `${where} token expected letters, digits and . _ ~ + / = -, but got other characters. Hint: generate one with openssl rand -hex 32.`);
    }
    if (seen.has(token)) throw new XlstmError('INVALID_CONFIG', `${where} expected a token not listed before, but got a repeat. Hint: list each token once, with its widest scope.`);
    seen.add(token);
    entries.push({ token, scope: scope as Scope });
  });
  return entries;
}

interface StoredToken {
  readonly digest: Buffer;
  readonly principal: Principal;
}

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

const OPEN: Principal = Object.freeze({ id: 'open', scope: 'admin' as const });
const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', scope: null });

export interface AccessOptions {
  /** Reads (queries, generate) without a token; mutations still need an admin token. */
  readonly publicRead?: boolean;
}

export class AccessPolicy {
  private readonly tokens: readonly StoredToken[];

  /** No tokens at all: an open server, where every caller may do everything (development on loopback). */
  constructor(
    entries: readonly TokenEntry[],
    private readonly options: AccessOptions = {},
  ) {
    this.tokens = entries.map((e) => {
      const d = digest(e.token);
      return { digest: d, principal: Object.freeze({ id: `token:${d.subarray(0, 4).toString('hex')}`, scope: e.scope }) };
    });
  }

  static open(): AccessPolicy {
    return new AccessPolicy([]);
  }

  /** Whether tokens are checked at all. */
  get enabled(): boolean {
    return this.tokens.length > 0;
  }

  get publicRead(): boolean {
    return this.options.publicRead === true;
  }

  /**
   * The caller behind an Authorization value ("Bearer TOKEN"; a bare token is accepted from graphql-ws
   * connectionParams), or why there is none. A wrong token is refused even where reads are public, so a typo
   * is not silently served as anonymous.
   */
  authenticate(credential: unknown): Principal | Denial {
    if (!this.enabled) return OPEN;
    if (credential === undefined || credential === null || credential === '') {
      return this.publicRead ? ANONYMOUS : unauthenticated('a bearer token (Authorization: Bearer TOKEN)', 'no token');
    }
    if (typeof credential !== 'string') return unauthenticated('a bearer token as a string', typeof credential);
    const match = /^\s*(?:bearer\s+)?(\S+)\s*$/i.exec(credential);
    if (!match) return unauthenticated('Authorization: Bearer TOKEN', 'a value of another form');
    const presented = digest(match[1]);
    // Every stored token is compared, each in constant time, so the time taken says nothing about which matched.
    let found: Principal | null = null;
    for (const t of this.tokens) if (timingSafeEqual(presented, t.digest) && found === null) found = t.principal;
    return found ?? unauthenticated('a token this server knows', 'an unknown token');
  }

  /** null when `principal` may run an operation of this kind. */
  authorize(principal: Principal, operation: OperationKind): Denial | null {
    if (operation !== 'mutation') return principal.scope !== null || this.publicRead ? null : unauthenticated('a bearer token', 'no token');
    if (principal.scope === 'admin') return null;
    if (principal.scope === null) return unauthenticated('an admin token for mutations', 'no token');
    return {
      code: 'FORBIDDEN',
      status: 403,
      message: `this operation expected a token with scope admin (every mutation needs one), but got a token with scope ${principal.scope}. Hint: ask for an admin token.`,
    };
  }
}

export function isDenial(x: Principal | Denial): x is Denial {
  return 'code' in x;
}

function unauthenticated(expected: string, got: string): Denial {
  return {
    code: 'UNAUTHENTICATED',
    status: 401,
    message: `this request expected ${expected}, but got ${got}. Hint: send Authorization: Bearer TOKEN over HTTP, or connectionParams { authorization: "Bearer TOKEN" } over graphql-ws.`,
  };
}
