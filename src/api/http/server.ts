/**
 * The API on ONE HTTP server and port: POST /graphql (Apollo Server), ws://HOST/graphql (graphql-ws), the
 * playground on GET /graphql for browsers, the runs page on GET /runs, /healthz, /readyz and /metrics. Both
 * transports pass the same guard (token, rate, scope, document rules) before anything runs. Draining stops new
 * work, ends open streams with CANCELLED, then closes.
 */
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError } from 'graphql';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Serving } from '../../serve/index.ts';
import { XlstmError } from '../../util/errors.ts';
import { buildApiSchema, createErrorFormatter, logInternalError, type ApiContext, type ConfigSource, type ErrorFormatter, type ServerInfo } from '../schema/index.ts';
import type { AccessPolicy, Principal } from './access.ts';
import { handleGraphQL } from './apollo-handler.ts';
import { Guard } from './guard.ts';
import type { ApiLimits } from './limits.ts';
import type { ApiMetrics } from './metrics.ts';
import { ASSET_PREFIX, Playground } from './playground.ts';
import { RUNS_PATH, serveRunsPage } from './runs-page.ts';
import { transition, type ServerEvent, type ServerState } from './state.ts';
import { attachSubscriptions, type SubscriptionServer } from './subscriptions.ts';

export interface ApiServerOptions {
  readonly serving: Serving;
  readonly configs: ConfigSource;
  readonly metrics: ApiMetrics;
  readonly version: string;
  /** The tfjs backend in use, for health and models. */
  readonly backend: () => string;
  /** What runs under the backend (the GPU adapter on webgpu), for health; empty when unknown. */
  readonly backendDetail?: () => string;
  /** Development only: masked errors carry the hidden error's message and stack. */
  readonly exposeInternals?: boolean;
  /** The playground; null switches it off. */
  readonly playground?: Playground | null;
  /** How long draining waits for open streams to deliver their last events. */
  readonly drainTimeoutMs?: number;
  /** More services for resolvers, spread into every request's context (the training run queue: `{ runs }`). */
  readonly extraContext?: Readonly<Record<string, unknown>>;
  /** Who may do what; an open server (no tokens: everyone may do everything) when left out. */
  readonly access?: AccessPolicy;
  /** Body size, rate, subscription quotas and document rules (DEFAULT_API_LIMITS fills the gaps). */
  readonly limits?: Partial<ApiLimits>;
  /** tfjs memory for /metrics (the composition root reads it; this layer does not import tfjs). */
  readonly memory?: () => { numTensors: number; numBytes: number };
}

/** What Apollo's plugins see: the resolvers' context plus the caller. */
type RequestContext = ApiContext & { readonly principal: Principal };

const DRAINING = 'the server expected to accept new work, but it is shutting down. Hint: retry against another instance or after the restart.';

export class ApiServer {
  private current: ServerState = { phase: 'starting' };
  private readonly startedAt = Date.now();
  private stopping: Promise<void> | null = null;

  private constructor(
    private readonly options: ApiServerOptions,
    private readonly http: Server,
    private readonly apollo: ApolloServer<RequestContext>,
    private readonly ws: SubscriptionServer,
    private readonly guard: Guard,
    private readonly format: ErrorFormatter,
  ) {}

  static async create(options: ApiServerOptions): Promise<ApiServer> {
    const schema = await buildApiSchema();
    const { metrics } = options;
    metrics.watch(() => options.serving.registry.counts());
    if (options.memory) metrics.watchMemory(options.memory);
    const guard = new Guard({ access: options.access, limits: options.limits });
    const format = createErrorFormatter({ exposeInternals: options.exposeInternals, onError: (code) => metrics.failure(code) });
    const guarding: ApolloServerPlugin<RequestContext> = {
      async requestDidStart() {
        return {
          // After parsing and validation, before execution: a refused operation runs nothing.
          async didResolveOperation({ operation, contextValue }) {
            metrics.operation('http', operation?.operation ?? 'unknown');
            const denied = operation ? guard.authorize(contextValue.principal, operation.operation) : null;
            if (denied) throw denied;
          },
        };
      },
    };
    const apollo = new ApolloServer<RequestContext>({
      schema,
      formatError: format,
      includeStacktraceInErrorResponses: false,
      // Stays on: a GET or a simple POST without a JSON content type or a preflight header is refused.
      csrfPrevention: true,
      // Introspection is one of the guard's rules (the same on both transports), so Apollo lets it through.
      introspection: true,
      validationRules: [...guard.rules],
      parseOptions: guard.parseOptions,
      // Draining is ours: Apollo must not stop itself on SIGINT/SIGTERM before open streams end.
      stopOnTerminationSignals: false,
      // Apollo's own landing page loads from a CDN; ours is bundled and served below.
      plugins: [ApolloServerPluginLandingPageDisabled(), guarding],
    });
    await apollo.start();
    let server: ApiServer | undefined;
    const http = createServer((req, res) => {
      (server as ApiServer).route(req, res).catch((e: unknown) => {
        const errorId = crypto.randomUUID();
        logInternalError(e, errorId);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`Internal server error (error id ${errorId})\n`);
      });
    });
    const ws = attachSubscriptions(http, {
      schema,
      context: (principal) => ({ ...(server as ApiServer).context(), principal }),
      format,
      refuse: () => ((server as ApiServer).current.phase === 'serving' ? null : new GraphQLError(DRAINING, { extensions: { code: 'CANCELLED' } })),
      onOperation: (type) => metrics.operation('ws', type),
      guard,
    });
    // Slow clients cannot hold a request open for long (the WebSocket upgrade leaves these timeouts behind).
    http.headersTimeout = 15_000;
    http.requestTimeout = 30_000;
    server = new ApiServer(options, http, apollo, ws, guard, format);
    return server;
  }

  get state(): ServerState {
    return this.current;
  }

  /** The bound port (useful after listening on port 0). */
  get port(): number {
    return (this.http.address() as AddressInfo).port;
  }

  async listen(port: number, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      const fail = (e: NodeJS.ErrnoException): void => {
        reject(
          e.code === 'EADDRINUSE' || e.code === 'EACCES'
            ? new XlstmError('INVALID_CONFIG', `the port expected to be free for ${host}:${port}, but got ${e.code}. Hint: pick another with --port or XLSTM_PORT (0 takes any free port).`, { cause: e })
            : e,
        );
      };
      this.http.once('error', fail);
      this.http.listen(port, host, () => {
        this.http.off('error', fail);
        resolve();
      });
    });
    const shownHost = host.includes(':') ? `[${host}]` : host;
    const url = `http://${shownHost}:${this.port}/graphql`;
    this.apply({ type: 'listening', url });
    return url;
  }

  /**
   * No new work (HTTP 503, WebSocket operations refused), open streams end with CANCELLED and are given
   * drainTimeoutMs to deliver it, then sockets, Apollo and the port close. Safe to call twice.
   */
  drain(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    if (this.current.phase === 'serving') this.apply({ type: 'drain' });
    await this.options.serving.close();
    await this.ws.idle(this.options.drainTimeoutMs ?? 5_000);
    await this.ws.close();
    await this.apollo.stop();
    await new Promise<void>((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    this.apply({ type: 'stopped' });
  }

  private apply(event: ServerEvent): void {
    this.current = transition(this.current, event);
  }

  private context(): ApiContext {
    const info: ServerInfo = {
      version: this.options.version,
      backend: this.options.backend,
      backendDetail: this.options.backendDetail ?? (() => ''),
      uptimeSeconds: () => (Date.now() - this.startedAt) / 1000,
      phase: () => this.current.phase,
    };
    return { ...this.options.extraContext, serving: this.options.serving, configs: this.options.configs, server: info };
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const { pathname } = url;
    const playground = this.options.playground;
    if (pathname === '/healthz') return text(res, 200, 'ok');
    if (pathname === '/favicon.ico') {
      res.writeHead(204).end();
      return;
    }
    if (pathname === '/readyz') {
      const ready = this.current.phase === 'serving' && this.options.serving.registry.ready;
      return text(res, ready ? 200 : 503, ready ? 'ready' : `not ready: ${this.current.phase === 'serving' ? 'no model has been loaded and warmed up' : this.current.phase}`);
    }
    if (pathname === '/metrics') {
      res.writeHead(200, { 'content-type': this.options.metrics.contentType });
      res.end(await this.options.metrics.render());
      return;
    }
    // The runs page rides on the playground's switch and bundle: --no-playground turns both off.
    if (playground && pathname === RUNS_PATH && req.method === 'GET') return serveRunsPage(res, playground);
    if (pathname === '/graphql') {
      if (playground && Playground.wantsPage(req)) return playground.page(res);
      if (this.current.phase !== 'serving') {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ message: DRAINING, extensions: { code: 'CANCELLED' } }] }));
        return;
      }
      const principal = this.guard.authenticate(req.headers.authorization);
      if (principal instanceof GraphQLError) return this.refuse(res, principal);
      const limited = this.guard.admit(this.guard.callerKey(principal, req.socket.remoteAddress));
      if (limited) return this.refuse(res, limited);
      return handleGraphQL(this.apollo, async () => ({ ...this.context(), principal }), req, res, url.search, this.guard.limits.maxBodyBytes);
    }
    if (playground && pathname.startsWith(ASSET_PREFIX) && (await playground.asset(pathname, res))) return;
    return text(res, 404, `no route for ${pathname}: try POST /graphql, GET /graphql in a browser, /healthz, /readyz or /metrics.`);
  }

  /** Refused before Apollo sees the request (no token, no rate left): a GraphQL error body with its status and headers. */
  private refuse(res: ServerResponse, error: GraphQLError): void {
    const http = error.extensions.http as { status: number; headers?: Map<string, string> };
    const body = { errors: [this.format(error.toJSON(), error)] };
    res.writeHead(http.status, { 'content-type': 'application/json; charset=utf-8', ...Object.fromEntries(http.headers ?? []) });
    res.end(JSON.stringify(body));
  }
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${body}\n`);
}
