import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { serveAdmin, type AdminServer } from '../../src/admin/index.js';
import type { Definition } from '../../src/core/definitions.js';
import { Engine } from '../../src/engine/engine.js';
import { serve, type IngressServer } from '../../src/ingress/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { FakeClock } from '../../src/testing/index.js';
import { createWebhooks, type Webhooks, type WebhooksOptions } from '../../src/webhooks/index.js';
import { tempDir } from '../helpers.js';

/** One request a test receiver got. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  path: string;
}

/** What the receiver answers; a function of the request number (0 for the first). */
export type Answer = {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer only once this settles (keeps the request in flight). */
  hold?: Promise<void>;
};

/** A local HTTP server on 127.0.0.1 standing in for a customer's webhook endpoint. */
export interface Receiver {
  url: string;
  requests: Received[];
  answer: (n: number, r: Received) => Answer;
  close(): Promise<void>;
}

export async function receiver(
  answer: Receiver['answer'] = () => ({ status: 200 }),
): Promise<Receiver> {
  const r: Receiver = { url: '', requests: [], answer, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got: Received = {
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        path: req.url ?? '/',
      };
      const n = r.requests.length;
      r.requests.push(got);
      const a = r.answer(n, got);
      const body = a.body ?? 'ok';
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(a.status, { 'content-length': Buffer.byteLength(body), ...a.headers });
        res.end(body);
      };
      if (a.hold) void a.hold.then(send);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  r.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hooks`;
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}

/**
 * Standard Webhooks verification written from the specification with node:crypto, independent of
 * Keel's implementation: HMAC-SHA256 keyed by the base64-decoded secret after `whsec_`, over
 * `${webhook-id}.${webhook-timestamp}.${body}`, base64, compared with each `v1,` entry.
 */
export function verifiesIndependently(secret: string, r: Received): boolean {
  const id = r.headers['webhook-id'];
  const ts = r.headers['webhook-timestamp'];
  const sig = r.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sig !== 'string') return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${r.body}`).digest();
  return sig.split(' ').some((entry) => {
    const [version, value] = entry.split(',');
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** An engine with webhooks on a fresh SQLite file and a fake clock, plus its ingress and admin API. */
export interface Hooked {
  engine: Engine;
  hooks: Webhooks;
  clock: FakeClock;
  ingress: IngressServer;
  admin: AdminServer;
  logs: string[];
  /** Calls the admin API; returns the status and the parsed JSON body. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** Stops everything and starts it again on the same database and clock. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function hooked(
  services: Definition[],
  options: WebhooksOptions = {},
  clockStart?: number,
  /** Opens the store (default: SQLite in a temporary directory). */
  openStore?: () => Promise<Store>,
): Promise<Hooked> {
  const { dir, cleanup } = tempDir('keel-webhooks-');
  const clock = new FakeClock(clockStart);
  const logs: string[] = [];
  const h = { clock, logs } as Hooked;
  const start = async (): Promise<void> => {
    const hooks = createWebhooks({ allow: ['127.0.0.1'], ...options });
    const engine = new Engine({
      services,
      store: openStore ? await openStore() : openSqliteStore({ path: join(dir, 'keel.db') }),
      clock,
      logger: (level, message) => logs.push(`${level} ${message}`),
      extensions: [hooks],
    });
    await engine.start();
    h.engine = engine;
    h.hooks = hooks;
    // The extension's routes: the receivers on the ingress, the management API on the admin API.
    h.ingress = await serve(engine, { port: 0 });
    h.admin = await serveAdmin(engine, { port: 0 });
  };
  const stop = async (): Promise<void> => {
    await Promise.all([h.ingress.close(), h.admin.close()]);
    await h.engine.stop(); // closes the extension too
  };
  await start();
  h.api = async (method, path, body) => {
    const res = await fetch(`${h.admin.url}${path}`, {
      method,
      ...(body !== undefined
        ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
        : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as unknown) : undefined };
  };
  h.restart = async () => {
    await stop();
    await start();
  };
  h.close = async () => {
    await stop().catch(() => undefined);
    cleanup();
  };
  return h;
}
