/**
 * What every operation passes before it runs, on HTTP and on graphql-ws alike: who the caller is, whether its
 * rate allows another operation, whether its scope allows this kind, and the document rules (depth, nesting,
 * cost, introspection) with the parser's token limit.
 */
import { GraphQLError, specifiedRules, type ParseOptions, type ValidationRule } from 'graphql';

import { AccessPolicy, isDenial, type Denial, type OperationKind, type Principal } from './access.ts';
import { resolveApiLimits, type ApiLimits } from './limits.ts';
import { SubscriptionQuota } from './quota.ts';
import { queryLimitRules } from './query-limits.ts';
import { RateLimiter } from './rate-limit.ts';

export interface GuardOptions {
  readonly access?: AccessPolicy;
  readonly limits?: Partial<ApiLimits>;
  readonly now?: () => number;
}

export class Guard {
  readonly access: AccessPolicy;
  readonly limits: ApiLimits;
  /** Added to graphql's specified rules by Apollo; graphql-ws gets `allRules`. */
  readonly rules: readonly ValidationRule[];
  readonly allRules: readonly ValidationRule[];
  readonly parseOptions: ParseOptions;
  readonly quota: SubscriptionQuota;
  private readonly rate: RateLimiter;

  constructor(options: GuardOptions = {}) {
    this.access = options.access ?? AccessPolicy.open();
    this.limits = resolveApiLimits(options.limits);
    this.rules = queryLimitRules(this.limits);
    this.allRules = [...specifiedRules, ...this.rules];
    this.parseOptions = { maxTokens: this.limits.maxTokens };
    this.quota = new SubscriptionQuota({ perConnection: this.limits.maxSubscriptionsPerConnection, perCaller: this.limits.maxSubscriptionsPerToken });
    this.rate = new RateLimiter({ perSecond: this.limits.ratePerSecond, burst: this.limits.rateBurst, now: options.now });
  }

  /** The caller, or a refusal as a GraphQL error (UNAUTHENTICATED, with its HTTP status). */
  authenticate(credential: unknown): Principal | GraphQLError {
    const result = this.access.authenticate(credential);
    return isDenial(result) ? denialError(result) : result;
  }

  /** Callers without a token share nothing: each address gets its own bucket and subscription share. */
  callerKey(principal: Principal, address: string | undefined): string {
    return principal.scope === null || principal.id === 'open' ? `${principal.id}@${address ?? 'unknown'}` : principal.id;
  }

  /** Takes one operation from the caller's rate; RATE_LIMITED (429, Retry-After) when there is none left. */
  admit(callerKey: string): GraphQLError | null {
    const decision = this.rate.take(callerKey);
    if (decision.ok) return null;
    return new GraphQLError(
      `this token expected at most ${this.limits.ratePerSecond} operations per second (bursts of ${this.limits.rateBurst}), but sent more. Hint: retry after ${decision.retryAfterSeconds} s.`,
      { extensions: { code: 'RATE_LIMITED', http: { status: 429, headers: new Map([['retry-after', String(decision.retryAfterSeconds)]]) } } },
    );
  }

  /** UNAUTHENTICATED or FORBIDDEN when the caller's scope does not allow `operation`. */
  authorize(principal: Principal, operation: OperationKind): GraphQLError | null {
    const denial = this.access.authorize(principal, operation);
    return denial ? denialError(denial) : null;
  }
}

export function denialError(denial: Denial): GraphQLError {
  const headers = new Map(denial.status === 401 ? [['www-authenticate', 'Bearer']] : []);
  return new GraphQLError(denial.message, { extensions: { code: denial.code, http: { status: denial.status, headers } } });
}
