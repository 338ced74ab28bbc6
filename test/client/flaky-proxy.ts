import net from 'node:net';

/**
 * A TCP proxy in front of the app that spoils its first connections, one fault each, with
 * real sockets: the faults a client meets between it and a Keel app (a load balancer cutting a
 * connection, a gateway answering 502 while the app restarts).
 *
 * - `reset-after-request`: the request reaches the app, which runs it and answers; the proxy
 *   resets the client's connection instead of passing the answer on (the answer is lost).
 * - `answer-502`: a gateway's 502 with an HTML page; the app never sees the request.
 * - `answer-503-json`: a 503 `{ code, message }` with `Retry-After: 0`; the app never sees it.
 * - `answer-200-text`: a 200 whose body is not JSON.
 */
export type Fault = 'reset-after-request' | 'answer-502' | 'answer-503-json' | 'answer-200-text';

export interface FlakyProxy {
  url: string;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

const CANNED: Record<Exclude<Fault, 'reset-after-request'>, string> = {
  'answer-502': raw(502, 'Bad Gateway', 'text/html', '<html><body>502 Bad Gateway</body></html>'),
  'answer-503-json': raw(
    503,
    'Service Unavailable',
    'application/json',
    '{"code":"unavailable","message":"restarting"}',
    'retry-after: 0\r\n',
  ),
  'answer-200-text': raw(200, 'OK', 'text/plain', 'hello from something else'),
};

function raw(status: number, reason: string, type: string, body: string, extra = ''): string {
  return (
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${type}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n${extra}\r\n${body}`
  );
}

export async function flakyProxy(targetPort: number, faults: Fault[]): Promise<FlakyProxy> {
  const queue = [...faults];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const fault = queue.shift();
    if (fault !== undefined && fault !== 'reset-after-request') {
      // Answer once the request has arrived, without reaching the app.
      client.once('data', () => client.end(CANNED[fault]));
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => upstream.destroy());
    client.pipe(upstream);
    if (fault === 'reset-after-request') {
      // The app has answered, so it ran the request: lose the answer with a TCP reset.
      upstream.once('data', () => {
        client.resetAndDestroy();
        upstream.destroy();
      });
    } else {
      upstream.pipe(client);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
