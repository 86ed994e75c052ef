/**
 * graphql-ws on the HTTP server's /graphql path: subscriptions (and queries) over WebSocket, guarded like HTTP
 * (token checked at connection time, rate, scope, depth/nesting/cost rules, open-subscription quotas, message
 * size), with errors passed through the same formatter, and a count of open operations for draining.
 */
import { getOperationAST, GraphQLError, parse, validate, type ExecutionResult, type GraphQLSchema } from 'graphql';
import type { Context } from 'graphql-ws';
import { useServer, type Extra } from 'graphql-ws/use/ws';
import type { Server } from 'node:http';
import { WebSocketServer } from 'ws';

import type { ApiContext, ErrorFormatter } from '../schema/index.ts';
import type { Principal } from './access.ts';
import { DocumentCache } from './document-cache.ts';
import { subscribeProjected } from './event-projection.ts';
import { Guard } from './guard.ts';

export interface SubscriptionServer {
  /** Operations subscribed and not yet completed. */
  readonly open: number;
  /** Resolves once no operation is open, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<void>;
  /** Closes every socket (1001, going away) and the WebSocket server. */
  close(): Promise<void>;
}

export interface SubscriptionOptions {
  readonly schema: GraphQLSchema;
  readonly context: (principal: Principal) => ApiContext;
  readonly format: ErrorFormatter;
  /** Refusal for new operations while draining: a message, or null to accept. */
  readonly refuse: () => GraphQLError | null;
  readonly onOperation: (type: string) => void;
  /** Access, rate, quotas and document rules; an open server without limits' defaults when left out. */
  readonly guard?: Guard;
}

/** graphql-ws's close code for a refused connection_init; the reason carries UNAUTHENTICATED and the message. */
export const CLOSE_UNAUTHENTICATED = 4401;

interface Caller {
  readonly principal: Principal;
  readonly key: string;
}

type WsContext = Context<Record<string, unknown> | undefined, Extra>;

export function attachSubscriptions(server: Server, options: SubscriptionOptions): SubscriptionServer {
  const guard = options.guard ?? new Guard();
  // noServer: the HTTP server's own errors (a port in use) stay the HTTP server's, not the WebSocket server's.
  // maxPayload: a larger message closes the socket (1009) before it is buffered whole.
  const wss = new WebSocketServer({ noServer: true, maxPayload: guard.limits.maxBodyBytes });
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== '/graphql') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  let open = 0;
  let waiters: Array<() => void> = [];
  const settle = (): void => {
    if (open > 0) return;
    const ready = waiters;
    waiters = [];
    ready.forEach((resolve) => resolve());
  };
  const callers = new WeakMap<object, Caller>();
  const documents = new DocumentCache();
  const formatAll = (errors: readonly GraphQLError[]) => errors.map((e) => options.format(e.toJSON(), e));

  /** Every check before execution; errors go to the client as the operation's error, the socket stays open. */
  const prepare = (ctx: WsContext, id: string, payload: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null }) => {
    const refusal = options.refuse();
    if (refusal) return [refusal];
    const caller = callers.get(ctx);
    if (!caller) return [new GraphQLError('this operation expected an acknowledged connection, but got none.', { extensions: { code: 'UNAUTHENTICATED' } })];
    const limited = guard.admit(caller.key);
    if (limited) return [limited];
    let document = documents.get(payload.query);
    if (!document) {
      try {
        document = parse(payload.query, guard.parseOptions);
      } catch (e) {
        const syntax = e as GraphQLError;
        return [new GraphQLError(syntax.message, { source: syntax.source, positions: syntax.positions, extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
      }
      const invalid = validate(options.schema, document, guard.allRules);
      if (invalid.length > 0) return invalid;
      documents.set(payload.query, document);
    }
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) {
      return [new GraphQLError('the document expected one operation to run (or operationName naming one), but got none that matches.', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })];
    }
    const denied = guard.authorize(caller.principal, operation.operation);
    if (denied) return [denied];
    if (operation.operation === 'subscription') {
      const full = guard.quota.acquire(ctx, caller.key, id);
      if (full) return [new GraphQLError(full, { extensions: { code: 'RATE_LIMITED' } })];
    }
    return {
      schema: options.schema,
      document,
      operationName: payload.operationName,
      variableValues: payload.variables,
      contextValue: options.context(caller.principal),
    };
  };

  const disposable = useServer(
    {
      schema: options.schema,
      subscribe: subscribeProjected,
      onConnect: (ctx) => {
        const params = ctx.connectionParams ?? {};
        const credential = params.authorization ?? params.Authorization ?? params.token ?? ctx.extra.request.headers.authorization;
        const principal = guard.authenticate(credential);
        if (principal instanceof GraphQLError) {
          options.format(principal.toJSON(), principal);
          // Closed here with our code and words; graphql-ws's own close (4403) after `false` is then a no-op.
          ctx.extra.socket.close(CLOSE_UNAUTHENTICATED, closeReason(`UNAUTHENTICATED: ${principal.message}`));
          return false;
        }
        callers.set(ctx, { principal, key: guard.callerKey(principal, ctx.extra.request.socket.remoteAddress) });
        return true;
      },
      onSubscribe: (ctx, id, payload) => {
        try {
          return prepare(ctx, id, payload);
        } catch (e) {
          // A throw here would close the whole socket: report it on this operation only, masked by the formatter.
          return [new GraphQLError(e instanceof Error ? e.message : String(e), { originalError: e instanceof Error ? e : undefined })];
        }
      },
      onOperation: (_ctx, _id, _payload, args) => {
        open++;
        options.onOperation(getOperationAST(args.document, args.operationName)?.operation ?? 'unknown');
      },
      onComplete: (ctx, id) => {
        guard.quota.release(ctx, id);
        open = Math.max(0, open - 1);
        settle();
      },
      onClose: (ctx) => {
        guard.quota.releaseAll(ctx);
      },
      onNext: (_ctx, _id, _payload, _args, result: ExecutionResult) =>
        result.errors ? { ...result, errors: formatAll(result.errors) } : undefined,
      onError: (_ctx, _id, _payload, errors) => formatAll(errors),
    },
    wss,
  );
  return {
    get open() {
      return open;
    },
    idle(timeoutMs) {
      if (open === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    async close() {
      await disposable.dispose();
    },
  };
}

/** WebSocket close reasons hold at most 123 bytes of UTF-8. */
function closeReason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= 123) return text;
  return `${bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD$/, '')}...`;
}
