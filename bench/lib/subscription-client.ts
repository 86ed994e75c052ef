/**
 * A minimal graphql-transport-ws client for load generation: one socket, one subscription, the arrival time of
 * each TokenEvent. The load generator shares the machine's two cores with the server it measures, so it should
 * take as little of them as it can: this one parses each message once and keeps no per-message machinery
 * (graphql-ws's client, which the tests use, took ~25% more CPU per event here: 62-65 against 48-51 us).
 */
import WebSocket from 'ws';

export interface StreamTiming {
  /** performance.now() when the socket was opened. */
  readonly start: number;
  /** performance.now() at each TokenEvent. */
  readonly arrivals: number[];
}

interface Message {
  type: string;
  payload?: { data?: { generate?: { __typename?: string } }; errors?: unknown } | unknown[];
}

/** Opens a socket, subscribes with `query` (selecting `generate { __typename }`) and resolves at `complete`. */
export function streamTokens(wsUrl: string, query: string, variables: Record<string, unknown>): Promise<StreamTiming> {
  const start = performance.now();
  const arrivals: number[] = [];
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, 'graphql-transport-ws');
    const fail = (why: string) => {
      ws.terminate();
      reject(new Error(why));
    };
    ws.on('open', () => ws.send('{"type":"connection_init"}'));
    ws.on('error', (e) => fail(e.message));
    ws.on('close', (code, reason) => fail(`socket closed before complete: ${code} ${reason.toString()}`));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Message;
      switch (m.type) {
        case 'connection_ack':
          ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
          return;
        case 'next': {
          const payload = m.payload as { data?: { generate?: { __typename?: string } }; errors?: unknown };
          if (payload.errors) return fail(JSON.stringify(payload.errors));
          if (payload.data?.generate?.__typename === 'TokenEvent') arrivals.push(performance.now());
          return;
        }
        case 'ping':
          ws.send('{"type":"pong"}');
          return;
        case 'error':
          return fail(JSON.stringify(m.payload));
        case 'complete':
          ws.removeAllListeners('close');
          ws.close(1000);
          resolve({ start, arrivals });
          return;
      }
    });
  });
}
