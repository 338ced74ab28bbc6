import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpClient } from './client.js';

/** The shared outbound client against a real local server. */
let server: Server;
let base = '';
let port = 0;
const sockets = new Set<Socket>();
let requests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      switch (req.url) {
        case '/json':
          res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
          return res.end('{"ok":true}');
        case '/big':
          res.writeHead(200, { 'content-type': 'text/plain' });
          return res.end('z'.repeat(5000));
        case '/drip': {
          // Each byte well within any idle timeout, the whole answer well beyond the deadline.
          res.writeHead(200, { 'content-type': 'text/plain' });
          let n = 0;
          const t = setInterval(() => {
            if (res.destroyed || ++n > 30) {
              clearInterval(t);
              if (!res.destroyed) res.end();
              return;
            }
            res.write('.');
          }, 50);
          return;
        }
        case '/wait':
          return setTimeout(() => res.writeHead(200).end('done'), 300).unref();
        default:
          res.writeHead(404).end();
      }
    });
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('HttpClient', () => {
  it('reuses a keep-alive connection per origin and reads status, headers and body', async () => {
    const http = new HttpClient({ connections: 1 });
    const before = sockets.size;
    for (let i = 0; i < 3; i++) {
      const r = await http.exchange({ method: 'GET', url: `${base}/json` });
      expect(r).toMatchObject({ ok: true, status: 200, truncated: false });
      if (!r.ok) throw new Error(r.message);
      expect(r.body.toString('utf8')).toBe('{"ok":true}');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['set-cookie']).toBe('a=1, b=2');
    }
    expect(sockets.size - before).toBe(1);
    await http.close();
  });

  it('keeps bodyLimit bytes of a longer answer and says it was truncated', async () => {
    const http = new HttpClient({ bodyLimit: 100 });
    const r = await http.exchange({ method: 'GET', url: `${base}/big` });
    expect(r).toMatchObject({ ok: true, status: 200, truncated: true });
    if (r.ok) expect(r.body.toString('utf8')).toBe('z'.repeat(100));
    await http.close();
  });

  it('enforces the deadline on the whole request, not per pause in the body', async () => {
    const http = new HttpClient();
    const r = await http.exchange({ method: 'GET', url: `${base}/drip`, timeoutMs: 400 });
    expect(r).toMatchObject({ ok: false, code: 'timeout', message: 'no answer within 400 ms' });
    // The pool still works afterwards.
    expect(await http.exchange({ method: 'GET', url: `${base}/json` })).toMatchObject({
      ok: true,
      status: 200,
    });
    await http.close();
  });

  it('answers a refused connection as connection_failed with the cause', async () => {
    const http = new HttpClient();
    const r = await http.exchange({ method: 'GET', url: 'http://127.0.0.1:1/' });
    expect(r).toMatchObject({ ok: false, code: 'connection_failed' });
    if (!r.ok) expect((r.cause as { code?: string }).code).toBe('ECONNREFUSED');
    await http.close();
  });

  it('with a guard: refuses a blocked address without connecting', async () => {
    const http = new HttpClient({ guard: {} });
    const n = requests;
    const r = await http.exchange({ method: 'GET', url: `${base}/json` });
    expect(r).toMatchObject({ ok: false, code: 'blocked_address', durationMs: 0 });
    expect(requests).toBe(n);
    expect(() => http.open({ method: 'GET', url: `${base}/json` }, 1000)).toThrow(/exchange/);
    await http.close();
  });

  it('with a guard: connects to the address it checked, not to a later DNS answer', async () => {
    let answers = 0;
    const http = new HttpClient({
      guard: {
        allow: ['127.0.0.1'],
        // The first answer is the checked one; a second lookup (DNS rebinding) would say 10.0.0.1.
        resolve: () => {
          answers++;
          return Promise.resolve([
            { address: answers === 1 ? '127.0.0.1' : '10.0.0.1', family: 4 },
          ]);
        },
      },
    });
    const r = await http.exchange({ method: 'GET', url: `http://hooks.example:${port}/json` });
    expect(r).toMatchObject({ ok: true, status: 200 });
    expect(answers).toBe(1);
    // Checked again on the next request: now the name resolves to a private address.
    expect(
      await http.exchange({ method: 'GET', url: `http://hooks.example:${port}/json` }),
    ).toMatchObject({ ok: false, code: 'blocked_address' });
    await http.close();
  });

  it('close() waits for requests in flight; close({ abort: true }) aborts them', async () => {
    const waiting = new HttpClient();
    const a = waiting.exchange({ method: 'GET', url: `${base}/wait` });
    await new Promise((r) => setTimeout(r, 50));
    await waiting.close();
    expect(await a).toMatchObject({ ok: true, status: 200 });
    expect(await waiting.exchange({ method: 'GET', url: `${base}/json` })).toMatchObject({
      ok: false,
      code: 'closed',
    });

    const aborting = new HttpClient();
    const b = aborting.exchange({ method: 'GET', url: `${base}/wait` });
    await new Promise((r) => setTimeout(r, 50));
    await aborting.close({ abort: true });
    expect(await b).toMatchObject({ ok: false, code: 'connection_failed' });
  });
});
