/**
 * The runs page's GraphQL client (bundled, never run by Node): queries and mutations over POST /graphql,
 * subscriptions over graphql-ws on the same URL, both carrying the token the page holds.
 */
import { createClient, type Client } from 'graphql-ws';

// The same key as the playground's, so a token entered there is used here in the same tab, and gone when it closes.
const TOKEN_KEY = 'xlstm.apiToken';

interface GraphQLErrorJson {
  readonly message: string;
  readonly extensions?: { readonly code?: string };
}

export interface Sink<T> {
  next(data: T): void;
  error(e: Error): void;
  complete(): void;
}

function describe(errors: readonly GraphQLErrorJson[]): Error {
  return new Error(errors.map((e) => (e.extensions?.code ? `${e.extensions.code}: ${e.message}` : e.message)).join('\n'));
}

export class Api {
  private ws: Client | null = null;
  private current = sessionStorage.getItem(TOKEN_KEY) ?? '';
  private readonly url = new URL('/graphql', location.href).href;

  get token(): string {
    return this.current;
  }

  /** True when the token changed: open subscriptions were made with the old one and must be made again. */
  setToken(value: string): boolean {
    const next = value.trim();
    if (next === this.current) return false;
    this.current = next;
    if (next) sessionStorage.setItem(TOKEN_KEY, next);
    else sessionStorage.removeItem(TOKEN_KEY);
    // graphql-ws checks the token when the socket connects, so a new token needs a new socket.
    void this.ws?.dispose();
    this.ws = null;
    return true;
  }

  private authorization(): Record<string, string> {
    return this.current ? { authorization: `Bearer ${this.current}` } : {};
  }

  async request<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.authorization() },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json().catch(() => null)) as { data?: T | null; errors?: GraphQLErrorJson[] } | null;
    if (!body) throw new Error(`/graphql answered HTTP ${res.status} without a GraphQL body`);
    if (body.errors?.length) throw describe(body.errors);
    return body.data as T;
  }

  /** Starts a subscription; the returned function ends it (and nothing reaches `sink` after that). */
  subscribe<T>(query: string, variables: Record<string, unknown>, sink: Sink<T>): () => void {
    this.ws ??= createClient({
      url: this.url.replace(/^http/, 'ws'),
      lazy: true,
      connectionParams: () => this.authorization(),
    });
    let open = true;
    const stop = this.ws.subscribe<T>(
      { query, variables },
      {
        next: (result) => {
          if (!open) return;
          if (result.errors?.length) sink.error(describe(result.errors as GraphQLErrorJson[]));
          else if (result.data) sink.next(result.data as T);
        },
        error: (e) => {
          if (!open) return;
          open = false;
          const closed = e as { code?: number; reason?: string };
          sink.error(Array.isArray(e) ? describe(e as GraphQLErrorJson[]) : e instanceof Error ? e : new Error(`the socket closed (${closed.code ?? '?'} ${closed.reason ?? ''})`));
        },
        complete: () => {
          if (!open) return;
          open = false;
          sink.complete();
        },
      },
    );
    return () => {
      open = false;
      stop();
    };
  }
}
