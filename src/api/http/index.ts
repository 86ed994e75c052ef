/** The HTTP layer's public API: the server, its access control and limits, its metrics, its lifecycle and the playground. */
export { ApiServer, type ApiServerOptions } from './server.ts';
export { AccessPolicy, parseTokenList, SCOPES, type AccessOptions, type Principal, type Scope, type TokenEntry } from './access.ts';
export { DEFAULT_API_LIMITS, resolveApiLimits, type ApiLimits } from './limits.ts';
export { DEFAULT_QUERY_LIMITS, type QueryLimits } from './query-limits.ts';
export { CLOSE_UNAUTHENTICATED } from './subscriptions.ts';
export { createMetrics, type ApiMetrics } from './metrics.ts';
export { transition, type ServerState, type ServerEvent } from './state.ts';
export { Playground, type PlaygroundOptions } from './playground.ts';
export { buildPlayground, ensurePlayground, isBundleCurrent, PLAYGROUND_DIR } from './playground-bundle.ts';
