import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FuzzCase } from './cases.js';
import { Sender } from './send.js';

// The fuzzer's sender must not make up unanswered requests: every request it reports as
// unanswered must be one the server left without an answer.

let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const request = (headers: [string, string][]): FuzzCase => ({
  transport: 'http',
  surface: 'ingress',
  gen: 'test',
  valid: false,
  method: 'POST',
  path: '/x',
  headers,
});

describe('Sender', () => {
  it('still sends after more requests undici refused than its pool has connections', async () => {
    const sender = new Sender({ ingress: url, admin: url });
    try {
      // undici refuses a header value with CR LF before sending anything; each refusal used
      // to cost the pool one of its 16 connections for good, and then every request hung.
      for (let i = 0; i < 20; i++) {
        const refused = await sender.send(request([['x-bad', 'a\r\nb']]));
        expect(refused.status).toBeUndefined();
        expect(refused.error).toMatch(/^UND_ERR_INVALID_ARG:/);
      }
      const answered = await sender.send(request([]));
      expect(answered.error).toBeUndefined();
      expect(answered.status).toBe(200);
    } finally {
      await sender.close();
    }
  }, 60_000);
});
