/**
 * The playground page's script (bundled by esbuild, never run by Node): GraphiQL against this server, queries
 * over POST /graphql and subscriptions over graphql-ws on the same URL. ?query= and ?variables= prefill the editors.
 * A token field above the editor sends `Authorization: Bearer TOKEN` over HTTP and as graphql-ws connectionParams.
 */
import './workers.ts';
import 'graphiql/style.css';

import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient, type Client } from 'graphql-ws';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';

const EXAMPLE = `# Try: the checkpoints on this server, then stream a completion.
query Checkpoints {
  checkpoints(first: 5) { items { id step created loaded isDefault } totalCount }
}

subscription Generate {
  generate(input: { prompts: ["Once upon a time"], maxTokens: 32, temperature: 0.7, topK: 50 }) {
    __typename
    ... on TokenEvent { promptIndex text position }
    ... on FinishEvent { promptIndex finishReason generatedTokens seed }
    ... on ErrorEvent { code message }
  }
}
`;

// The tab's session only: a token typed here is gone when the tab closes.
const TOKEN_KEY = 'xlstm.apiToken';
const url = new URL('/graphql', location.href).href;
const params = new URLSearchParams(location.search);
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
/** Bumped when the token changes: GraphiQL is mounted again, so it fetches the schema with the new token. */
let generation = 0;

// graphql-ws checks the token when the socket connects, so a new token needs a new client.
let current: { token: string; ws: Client; fetcher: Fetcher } | null = null;
const fetcher: Fetcher = (graphQLParams, options) => {
  if (current?.token !== token) {
    void current?.ws.dispose();
    const authorization = token ? `Bearer ${token}` : undefined;
    const ws = createClient({ url: url.replace(/^http/, 'ws'), lazy: true, connectionParams: () => (authorization ? { authorization } : {}) });
    current = { token, ws, fetcher: createGraphiQLFetcher({ url, wsClient: ws, headers: authorization ? { authorization } : undefined }) };
  }
  return current.fetcher(graphQLParams, options);
};

function applyToken(value: string): void {
  const next = value.trim();
  if (next === token) return;
  token = next;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  generation++;
  render();
}

const BAR_STYLE = { display: 'flex', gap: '0.5em', alignItems: 'center', padding: '0.4em 1em', font: '14px system-ui, sans-serif', borderBottom: '1px solid #ddd' };

function tokenBar(): unknown {
  return createElement(
    'form',
    {
      style: BAR_STYLE,
      onSubmit: (e: { preventDefault(): void; currentTarget: HTMLFormElement }) => {
        e.preventDefault();
        applyToken((e.currentTarget.elements.namedItem('token') as HTMLInputElement).value);
      },
    },
    createElement('label', { htmlFor: 'xlstm-token' }, 'API token'),
    createElement('input', {
      id: 'xlstm-token',
      name: 'token',
      type: 'password',
      autoComplete: 'off',
      defaultValue: token,
      placeholder: 'leave empty on a server without tokens',
      style: { flex: '0 1 28em' },
      onBlur: (e: { currentTarget: HTMLInputElement }) => applyToken(e.currentTarget.value),
    }),
    createElement('button', { type: 'submit' }, 'Use token'),
    createElement('span', { id: 'xlstm-token-state', style: { color: '#666' } }, token ? 'sent with every request' : 'no token sent'),
    createElement('a', { href: '/runs', style: { marginLeft: 'auto' } }, 'Runs'),
  );
}

const root = createRoot(document.getElementById('root') as HTMLElement);

function render(): void {
  root.render(
    createElement(
      'div',
      { style: { display: 'flex', flexDirection: 'column', height: '100%' } },
      tokenBar(),
      createElement(
        'div',
        { style: { flex: '1', minHeight: '0' } },
        createElement(GraphiQL, {
          key: generation,
          fetcher,
          defaultQuery: EXAMPLE,
          initialQuery: params.get('query') ?? undefined,
          initialVariables: params.get('variables') ?? undefined,
        }),
      ),
    ),
  );
}

render();
