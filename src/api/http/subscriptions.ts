/**
 * graphql-ws on the HTTP server's /graphql path: subscriptions (and queries) over WebSocket, with errors
 * passed through the same formatter as HTTP, and a count of open operations for draining.
 */
import { getOperationAST, type ExecutionResult, type GraphQLError, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { Server } from 'node:http';
import { WebSocketServer } from 'ws';

import type { ApiContext, ErrorFormatter } from '../schema/index.ts';

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
  readonly context: () => ApiContext;
  readonly format: ErrorFormatter;
  /** Refusal for new operations while draining: a message, or null to accept. */
  readonly refuse: () => GraphQLError | null;
  readonly onOperation: (type: string) => void;
}

export function attachSubscriptions(server: Server, options: SubscriptionOptions): SubscriptionServer {
  // noServer: the HTTP server's own errors (a port in use) stay the HTTP server's, not the WebSocket server's.
  const wss = new WebSocketServer({ noServer: true });
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
  const formatAll = (errors: readonly GraphQLError[]) => errors.map((e) => options.format(e.toJSON(), e));
  const disposable = useServer(
    {
      schema: options.schema,
      context: () => options.context(),
      onSubscribe: () => {
        const refusal = options.refuse();
        return refusal ? [refusal] : undefined;
      },
      onOperation: (_ctx, _id, _payload, args) => {
        open++;
        options.onOperation(getOperationAST(args.document, args.operationName)?.operation ?? 'unknown');
      },
      onComplete: () => {
        open = Math.max(0, open - 1);
        settle();
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
