import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sender } from './http.js';

/** The Sender's reading of answers: status, Retry-After, a bounded body, errors and timeouts. */
let server: Server;
let base = '';
const seen: Array<{ headers: Record<string, unknown>; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      switch (req.url) {
        case '/ok':
          res.writeHead(200, { 'content-length': 2 });
          return res.end('ok');
        case '/busy':
          res.writeHead(503, { 'retry-after': '120', 'content-length': 4 });
          return res.end('busy');
        case '/empty':
          res.writeHead(204);
          return res.end();
        case '/huge':
          // Chunked and far beyond the drain limit: the sender keeps the start, drops the rest.
          res.writeHead(200, { 'content-type': 'text/plain' });
          for (let i = 0; i < 40; i++) res.write('y'.repeat(8192));
          return res.end();
        case '/slow':
          return setTimeout(() => res.writeHead(200).end('late'), 2000).unref();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function sender(timeoutMs = 5000): Sender {
  return new Sender({ allow: ['127.0.0.1'], timeoutMs, bodyLimit: 1024, connections: 4 });
}

describe('Sender', () => {
  it('posts the body with the given headers and reads status and body', async () => {
    const s = sender();
    const o = await s.post(`${base}/ok`, ['webhook-id', 'msg_1'], '{"a":1}');
    expect(o).toMatchObject({ status: 200, body: 'ok' });
    expect(o.durationMs).toBeGreaterThanOrEqual(0);
    const last = seen[seen.length - 1]!;
    expect(last.body).toBe('{"a":1}');
    expect(last.headers).toMatchObject({
      'webhook-id': 'msg_1',
      'content-type': 'application/json',
      'user-agent': 'Keel-Webhooks/1',
    });
    await s.close();
  });

  it('reports Retry-After, and no body for an empty answer', async () => {
    const s = sender();
    expect(await s.post(`${base}/busy`, [], '{}')).toMatchObject({
      status: 503,
      retryAfter: '120',
      body: 'busy',
    });
    const empty = await s.post(`${base}/empty`, [], '{}');
    expect(empty.status).toBe(204);
    expect(empty).not.toHaveProperty('body');
    await s.close();
  });

  it('keeps the first bodyLimit bytes of a large answer and stops reading it', async () => {
    const s = sender();
    const o = await s.post(`${base}/huge`, [], '{}');
    expect(o.status).toBe(200);
    expect(o.body).toBe('y'.repeat(1024));
    // The pool is still usable afterwards.
    expect(await s.post(`${base}/ok`, [], '{}')).toMatchObject({ status: 200, body: 'ok' });
    await s.close();
  });

  it('answers a timeout and a refused connection as errors, without throwing', async () => {
    const s = sender(200);
    expect(await s.post(`${base}/slow`, [], '{}')).toMatchObject({ errorCode: 'timeout' });
    const refused = await s.post('http://127.0.0.1:1/x', [], '{}');
    expect(refused.errorCode).toBe('connection_failed');
    expect(refused.status).toBeUndefined();
    await s.close();
  });

  it('refuses a URL the SSRF check blocks, without connecting', async () => {
    const s = new Sender({ allow: [], timeoutMs: 1000, bodyLimit: 1024, connections: 1 });
    const n = seen.length;
    expect(await s.post(`${base}/ok`, [], '{}')).toMatchObject({ errorCode: 'blocked_address' });
    expect(seen.length).toBe(n);
    await s.close();
  });
});
