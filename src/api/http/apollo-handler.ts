/** Bridges node:http requests to Apollo Server's transport-neutral executeHTTPGraphQLRequest. */
import type { ApolloServer, BaseContext } from '@apollo/server';
import { HeaderMap } from '@apollo/server';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Bodies above this are refused with 413 before they are parsed. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export async function handleGraphQL<C extends BaseContext>(
  apollo: ApolloServer<C>,
  context: () => Promise<C>,
  req: IncomingMessage,
  res: ServerResponse,
  search: string,
): Promise<void> {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  let body: unknown;
  if (req.method === 'POST') {
    const read = await readBody(req);
    if (read === null) return plain(res, 413, `request body expected at most ${MAX_BODY_BYTES} bytes, but got more.`);
    if ((headers.get('content-type') ?? '').includes('application/json') && read.length > 0) {
      try {
        body = JSON.parse(read.toString('utf8'));
      } catch (e) {
        return plain(res, 400, `request body expected JSON, but got a parse error: ${(e as Error).message}`);
      }
    } else {
      body = read.toString('utf8');
    }
  }
  const response = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: (req.method ?? 'GET').toUpperCase(), headers, search, body },
    context,
  });
  for (const [key, value] of response.headers) res.setHeader(key, value);
  res.statusCode = response.status ?? 200;
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/** The whole body, or null once it passes MAX_BODY_BYTES. */
async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function plain(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}
