/** Bridges node:http requests to Apollo Server's transport-neutral executeHTTPGraphQLRequest. */
import type { ApolloServer, BaseContext } from '@apollo/server';
import { HeaderMap } from '@apollo/server';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Bodies above this are refused with 413 before they are parsed (the server passes its own limit). */
export const MAX_BODY_BYTES = 1024 * 1024;

export async function handleGraphQL<C extends BaseContext>(
  apollo: ApolloServer<C>,
  context: () => Promise<C>,
  req: IncomingMessage,
  res: ServerResponse,
  search: string,
  maxBodyBytes: number = MAX_BODY_BYTES,
): Promise<void> {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  let body: unknown;
  if (req.method === 'POST') {
    const tooLarge = (): void => {
      // The rest of the body is not read: close the connection rather than leave it half consumed.
      res.setHeader('connection', 'close');
      plain(res, 413, `request body expected at most ${maxBodyBytes} bytes, but got more. Hint: send fewer or shorter prompts.`);
    };
    // A declared length is refused before a byte is read; a chunked body is counted as it arrives.
    if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) return tooLarge();
    const read = await readBody(req, maxBodyBytes);
    if (read === null) return tooLarge();
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

/** The whole body, or null once it passes `limit`. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function plain(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}
