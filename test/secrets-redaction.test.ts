import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp, type App } from '../src/app.js';
import { createDatabases, database } from '../src/databases/index.js';
import { service } from '../src/index.js';
import { integration, use } from '../src/integrations/index.js';
import { tempDir } from './helpers.js';

/**
 * The redaction audit: an app holding known secrets (admin, viewer and ingress tokens, an
 * inbound webhook secret, an outbound endpoint's secret, an integration's API token, a database
 * password in its URL) is used over HTTP, then every GET route of the admin API (read from the
 * route tables in the sources) is walked as admin and as viewer. No answer (but the admin's
 * explicit `GET /webhooks/{id}/secret`) and no line written to the log, stdout or stderr may
 * contain any secret.
 */
const ADMIN = 'admin-secret-token-0123456789abcdef0123';
const VIEWER = 'viewer-secret-token-0123456789abcdef012';
const INGRESS = 'ingress-secret-key-0123456789abcdef0123';
const INBOUND = 'inbound-github-secret-0123456789abcdef';
const API_TOKEN = 'sk_live_integration_token_0123456789abcd';
const DB_PASSWORD = 'db-password-0123456789abcdef';
const known = [ADMIN, VIEWER, INGRESS, INBOUND, API_TOKEN, DB_PASSWORD];

const SOURCES = [
  'src/admin/server.ts',
  'src/admin/actions.ts',
  'src/admin/state.ts',
  'src/webhooks/outbound/admin.ts',
  'src/integrations/runtime/admin.ts',
  'src/buses/admin.ts',
  'src/databases/admin.ts',
  'src/flows/http.ts',
  'src/observability/metrics/history.ts',
];

/** Every `GET /path` the route tables and TSDoc of the admin modules name. */
function adminGetRoutes(): string[] {
  const root = path.resolve(import.meta.dirname, '..');
  const routes = new Set<string>(['/whoami', '/integrations/status']);
  for (const file of SOURCES) {
    const full = path.join(root, file);
    if (!fs.existsSync(full)) continue;
    for (const m of fs.readFileSync(full, 'utf8').matchAll(/GET (\/[A-Za-z0-9_{}./-]+)/g))
      routes.add(m[1]!.replace(/\.$/, ''));
  }
  return [...routes];
}

let app: App;
let upstream: http.Server;
let sink: http.Server;
const tmp = tempDir('keel-redaction-');
const logs: string[] = [];
let endpointSecret = '';
let endpointId = '';
let invocationId = '';
const restore: Array<() => void> = [];

const Hook = service({ name: 'Hook', handlers: { got: async () => undefined } });

beforeAll(async () => {
  // Everything written to stdout and stderr during the test, as the process would log it.
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = (chunk: unknown, ...rest: unknown[]) => {
      logs.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    };
    restore.push(() => (stream.write = write));
  }
  upstream = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    // The provider checks the token (a journaled answer holds what the provider sends, so it
    // must not echo it: that would be the provider's leak, not Keel's).
    res.end(JSON.stringify({ authorized: req.headers.authorization === `Bearer ${API_TOKEN}` }));
  });
  sink = http.createServer((_req, res) => res.end('ok'));
  await Promise.all(
    [upstream, sink].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))),
  );
  const api = integration({
    name: 'PayAPI',
    baseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    auth: { type: 'bearer', token: API_TOKEN },
    operations: { me: { path: '/me' } },
  });
  const pgUrl = new URL(inject('postgresUrl'));
  pgUrl.password = DB_PASSWORD; // trust auth: any password connects
  const Orders = database({ name: 'orders', type: 'postgres', url: pgUrl.toString() });
  const Pay = service({
    name: 'Pay',
    handlers: {
      me: async (ctx) => {
        const r = await use(ctx, api).me();
        ctx.log?.info?.('called me', { token: API_TOKEN });
        return r;
      },
    },
  });
  app = await startApp({
    services: [Pay, Hook],
    db: path.join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    viewerToken: VIEWER,
    ingressKeys: [INGRESS],
    integrations: [api],
    extensions: [createDatabases([Orders])],
    webhooks: {
      allow: ['127.0.0.1'],
      receivers: {
        github: {
          provider: 'github',
          secret: INBOUND,
          route: () => ({ target: Hook, handler: 'got' }),
        },
      },
    },
    logger: (level, message, fields) =>
      logs.push(`${level} ${message} ${fields === undefined ? '' : JSON.stringify(fields)}`),
  });
  const call = await fetch(`${app.ingress.url}/Pay/me`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGRESS}`, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(call.status).toBe(200);
  invocationId = call.headers.get('x-keel-invocation-id') ?? '';
  if (invocationId === '') {
    const list = await admin('/invocations?service=Pay', ADMIN);
    invocationId = (list.json as { invocations: Array<{ id: string }> }).invocations[0]!.id;
  }
  const created = await fetch(`${app.admin.url}/webhooks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hook`,
      events: ['order.*'],
    }),
  });
  expect(created.status).toBe(201);
  const ep = (await created.json()) as { id: string; secret: string };
  endpointId = ep.id;
  endpointSecret = ep.secret;
  expect(endpointSecret.length).toBeGreaterThan(10);
  await app.webhooks!.publish('order.created', { n: 1 });
}, 120_000);

afterAll(async () => {
  for (const r of restore) r();
  await app?.close();
  await Promise.all([upstream, sink].map((s) => new Promise((r) => s?.close(r))));
  tmp.cleanup();
});

async function admin(route: string, token: string) {
  const res = await fetch(`${app.admin.url}${route}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

/** A route's `{param}`s filled with ids that exist. */
function fill(route: string): string {
  return route
    .replace('/invocations/{id}', `/invocations/${invocationId}`)
    .replace('/webhooks/deliveries/{id}', '/webhooks/deliveries/unknown')
    .replace('/webhooks/{id}', `/webhooks/${endpointId}`)
    .replace('/integrations/{name}', '/integrations/PayAPI')
    .replace('/databases/{name}', '/databases/orders')
    .replace(/\{service\}/, 'Pay')
    .replace(/\{[A-Za-z]+\}/g, 'x');
}

describe('secrets never leave the process', () => {
  it('no admin GET answer contains a secret, as admin or as viewer (but the admin reveal)', async () => {
    const routes = adminGetRoutes();
    expect(routes.length).toBeGreaterThan(15);
    const secrets = [...known, endpointSecret];
    let ok = 0;
    for (const route of routes) {
      const url = fill(route);
      for (const token of [ADMIN, VIEWER]) {
        const r = await admin(url, token);
        if (r.status === 200) ok++;
        const reveal = route === '/webhooks/{id}/secret' && token === ADMIN;
        for (const s of reveal ? known : secrets)
          expect({
            url,
            role: token === ADMIN ? 'admin' : 'viewer',
            leaked: r.text.includes(s),
          }).toEqual({ url, role: token === ADMIN ? 'admin' : 'viewer', leaked: false });
        if (reveal) expect(r.json).toEqual({ secret: endpointSecret });
      }
    }
    // Most routes answered with data, not an error: the walk saw real content.
    expect(ok).toBeGreaterThan(routes.length);
  });

  it('no log line, stdout or stderr output contains a secret', async () => {
    // Give deliveries and health checks a moment to log.
    await new Promise((r) => setTimeout(r, 500));
    const all = logs.join('\n');
    expect(all.length).toBeGreaterThan(0);
    for (const s of [...known, endpointSecret]) {
      const at = all.indexOf(s);
      expect(at === -1 ? 'none' : all.slice(Math.max(0, at - 300), at + 60)).toBe('none');
    }
  });
});
