import { request as httpRequest, type Server } from 'node:http';
import { duplexPair } from 'node:stream';

/**
 * Socketless requests (`handle()` of the ingress and the admin API): a Fetch API `Request` is
 * written over an in-memory connection into the very `node:http` server that serves TCP
 * clients, and Node's own HTTP client reads the answer back into a `Response`. Nothing is
 * imitated: the request is parsed, routed, limited and answered by the same code, including
 * `Expect: 100-continue`, keep-alive and `Connection: close` decisions, so tests through
 * `handle()` cannot drift from what clients see.
 */

/** Hop-by-hop and framing headers: the in-memory connection sets its own. */
const OWN_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);
/** Statuses whose answer has no body, whatever the headers say (a `Response` refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** Sends `request` to `server` over an in-memory connection and resolves with the answer. */
export async function inject(server: Server, request: Request): Promise<Response> {
  const url = new URL(request.url);
  const body = request.body === null ? undefined : Buffer.from(await request.arrayBuffer());
  const headers: Record<string, string> = { host: url.host };
  request.headers.forEach((value, name) => {
    if (!OWN_HEADERS.has(name)) headers[name] = value;
  });
  // Keep-alive, as a browser or an HTTP client pool sends it, so that whether the answer
  // closes the connection is the server's decision, visible in the answer's headers.
  headers.connection = 'keep-alive';
  if (body !== undefined) headers['content-length'] = String(body.length);

  const [client, socket] = duplexPair();
  // An in-process caller is as local as a client gets (the ingress's revealTargets).
  Object.defineProperty(socket, 'remoteAddress', { value: '127.0.0.1' });
  server.emit('connection', socket);

  return new Promise<Response>((resolve, reject) => {
    const onAbort = (): void => {
      req.destroy(request.signal.reason instanceof Error ? request.signal.reason : undefined);
    };
    const req = httpRequest(
      {
        method: request.method,
        path: url.pathname + url.search,
        headers,
        setHost: false,
        createConnection: () => client,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          request.signal.removeEventListener('abort', onAbort);
          // The connection is this request's alone: closing it ends the server's side too.
          client.destroy();
          const answerHeaders = new Headers();
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
            answerHeaders.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
          const status = res.statusCode ?? 500;
          const empty = NULL_BODY.has(status) || request.method === 'HEAD';
          resolve(
            new Response(empty ? null : Buffer.concat(chunks), {
              status,
              statusText: res.statusMessage,
              headers: answerHeaders,
            }),
          );
        });
      },
    );
    req.on('error', (err) => {
      request.signal.removeEventListener('abort', onAbort);
      client.destroy();
      reject(err);
    });
    if (request.signal.aborted) onAbort();
    else request.signal.addEventListener('abort', onAbort, { once: true });
    req.end(body);
  });
}
