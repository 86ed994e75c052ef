/**
 * The server's access and limits from its environment (the composition root passes process.env in): tokens from
 * XLSTM_API_TOKENS and XLSTM_API_TOKENS_FILE, public reads, introspection, rates and quotas. Refuses to serve
 * without tokens beyond loopback unless told to.
 */
import { promises as fsp } from 'node:fs';

import { AccessPolicy, parseTokenList, resolveApiLimits, type ApiLimits, type TokenEntry } from '../api/http/index.ts';
import { XlstmError } from '../util/errors.ts';

export interface ApiSettings {
  readonly access: AccessPolicy;
  readonly limits: Partial<ApiLimits>;
  /** Things the operator should hear about at start-up (an open server, short tokens, a readable token file). */
  readonly warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

export const API_ENV_USAGE = `Environment (access and limits; docs/SECURITY.md):
  XLSTM_API_TOKENS        "tokenA:admin,tokenB:read"; read = queries and generate, admin = every mutation too
  XLSTM_API_TOKENS_FILE   a file of TOKEN:SCOPE lines (# comments); may be combined with XLSTM_API_TOKENS
  XLSTM_PUBLIC_READ=1     queries and generate without a token (mutations still need admin)
  XLSTM_ALLOW_OPEN=1      serve without any token on a non-loopback host (everyone may do everything)
  XLSTM_INTROSPECTION     1 or 0; default on, off when NODE_ENV=production
  XLSTM_RATE_PER_SECOND, XLSTM_RATE_BURST, XLSTM_MAX_SUBSCRIPTIONS_PER_CONNECTION, XLSTM_MAX_SUBSCRIPTIONS_PER_TOKEN,
  XLSTM_MAX_BODY_BYTES, XLSTM_MAX_QUERY_DEPTH, XLSTM_MAX_QUERY_COST   (defaults in docs/SECURITY.md)`;

const NUMERIC: ReadonlyArray<readonly [string, keyof ApiLimits]> = [
  ['XLSTM_RATE_PER_SECOND', 'ratePerSecond'],
  ['XLSTM_RATE_BURST', 'rateBurst'],
  ['XLSTM_MAX_SUBSCRIPTIONS_PER_CONNECTION', 'maxSubscriptionsPerConnection'],
  ['XLSTM_MAX_SUBSCRIPTIONS_PER_TOKEN', 'maxSubscriptionsPerToken'],
  ['XLSTM_MAX_BODY_BYTES', 'maxBodyBytes'],
  ['XLSTM_MAX_QUERY_DEPTH', 'maxDepth'],
  ['XLSTM_MAX_QUERY_COST', 'maxCost'],
];

/** Tokens shorter than this are accepted, with a warning: they can be guessed. */
const SHORT_TOKEN = 16;

export async function apiSettings(env: Env, host: string): Promise<ApiSettings> {
  const warnings: string[] = [];
  const tokens: TokenEntry[] = [];
  if (env.XLSTM_API_TOKENS) tokens.push(...parseTokenList(env.XLSTM_API_TOKENS, 'XLSTM_API_TOKENS'));
  const file = env.XLSTM_API_TOKENS_FILE;
  if (file) {
    const [text, stat] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]).catch((e: NodeJS.ErrnoException) => {
      throw new XlstmError('INVALID_CONFIG', `XLSTM_API_TOKENS_FILE expected a readable file, but ${file} gave ${e.code ?? e.message}. Hint: check the path and its permissions.`, { cause: e });
    });
    if ((stat.mode & 0o077) !== 0) warnings.push(`token file ${file} can be read by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it.`);
    const fromFile = parseTokenList(text, file);
    const repeated = fromFile.find((t) => tokens.some((e) => e.token === t.token));
    if (repeated) throw new XlstmError('INVALID_CONFIG', `${file} expected tokens other than those in XLSTM_API_TOKENS, but got a repeat. Hint: list each token once.`);
    tokens.push(...fromFile);
  }
  const short = tokens.filter((t) => t.token.length < SHORT_TOKEN).length;
  if (short > 0) warnings.push(`${short} API token(s) are shorter than ${SHORT_TOKEN} characters and could be guessed; use openssl rand -hex 32.`);

  const publicRead = flag(env, 'XLSTM_PUBLIC_READ', false);
  if (tokens.length === 0) {
    if (!isLoopback(host) && !flag(env, 'XLSTM_ALLOW_OPEN', false)) {
      throw new XlstmError(
        'INVALID_CONFIG',
        `serving on ${host} expected API tokens (anyone who can reach it could run mutations), but got none. ` +
          'Hint: set XLSTM_API_TOKENS="TOKEN:admin" (or XLSTM_API_TOKENS_FILE), or XLSTM_ALLOW_OPEN=1 to serve without them.',
      );
    }
    warnings.push(`no API tokens: every caller may run every mutation${isLoopback(host) ? ' (loopback only)' : ''}. Set XLSTM_API_TOKENS to require them.`);
  } else if (tokens.every((t) => t.scope !== 'admin')) {
    warnings.push('no API token has scope admin: no one can run mutations (load models, start runs).');
  }

  const limits: Record<string, number | boolean> = {
    introspection: flag(env, 'XLSTM_INTROSPECTION', env.NODE_ENV !== 'production'),
  };
  for (const [name, key] of NUMERIC) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new XlstmError('INVALID_CONFIG', `${name} expected a number, but got ${JSON.stringify(raw)}.`);
    limits[key] = value;
  }
  try {
    resolveApiLimits(limits as Partial<ApiLimits>);
  } catch (e) {
    const key = /api limit (\w+)/.exec((e as Error).message)?.[1];
    const name = NUMERIC.find(([, k]) => k === key)?.[0];
    throw name ? new XlstmError('INVALID_CONFIG', (e as Error).message.replace(`api limit ${key}`, name)) : e;
  }
  return { access: new AccessPolicy(tokens, { publicRead }), limits: limits as Partial<ApiLimits>, warnings };
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new XlstmError('INVALID_CONFIG', `${name} expected 1 or 0 (true or false), but got ${JSON.stringify(env[name])}.`);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
