/** The HTTP layer's public API: the server, its metrics, its lifecycle and the playground. */
export { ApiServer, type ApiServerOptions } from './server.ts';
export { createMetrics, type ApiMetrics } from './metrics.ts';
export { transition, type ServerState, type ServerEvent } from './state.ts';
export { Playground, type PlaygroundOptions } from './playground.ts';
export { buildPlayground, ensurePlayground, isBundleCurrent, PLAYGROUND_DIR } from './playground-bundle.ts';
