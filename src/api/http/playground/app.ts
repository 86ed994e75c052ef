/**
 * The playground page's script (bundled by esbuild, never run by Node): GraphiQL against this server, queries
 * over POST /graphql and subscriptions over graphql-ws on the same URL. ?query= and ?variables= prefill the editors.
 */
import './workers.ts';
import 'graphiql/style.css';

import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createClient } from 'graphql-ws';
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

const url = new URL('/graphql', location.href).href;
const fetcher = createGraphiQLFetcher({ url, wsClient: createClient({ url: url.replace(/^http/, 'ws'), lazy: true }) });
const params = new URLSearchParams(location.search);

createRoot(document.getElementById('root') as HTMLElement).render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery: EXAMPLE,
    initialQuery: params.get('query') ?? undefined,
    initialVariables: params.get('variables') ?? undefined,
  }),
);
