/**
 * The local API the integrations bench calls: `GET /users/{name}` answers a small JSON object,
 * `POST /charges` echoes a charge. Run in its own process (pinned by the bench), prints
 * `UPSTREAM_READY <port>`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body =
      req.method === 'POST'
        ? `{"id":"ch_1","amount":${Buffer.concat(chunks).toString() || 'null'}}`
        : `{"login":"${(req.url ?? '').split('/').pop()}","id":42}`;
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`UPSTREAM_READY ${(server.address() as AddressInfo).port}`);
});
