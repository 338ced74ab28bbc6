/**
 * The management API of outbound webhooks, mounted on the admin server under `/webhooks`
 * (behind its token). Shapes as in seed 003. The reads (`GET`, except the secret's reveal)
 * accept the admin API's user token too; every write (`POST`, `PUT`, `DELETE`) and
 * `GET /webhooks/{id}/secret` need the admin token: the user token is answered 403 `forbidden`.
 *
 * | Request                                 | Answer                                                             |
 * | --------------------------------------- | ------------------------------------------------------------------ |
 * | `GET /webhooks`                         | 200 `{ endpoints }` (no secrets), with `is_healthy`, `circuit_state` |
 * | `POST /webhooks`                        | 201 the endpoint **with its `secret`** (shown this once)           |
 * | `GET /webhooks/{id}`                    | 200 the endpoint                                                   |
 * | `PUT /webhooks/{id}`                    | 200 the endpoint; any of `name`, `url`, `events`, `is_active`      |
 * | `DELETE /webhooks/{id}`                 | 200 `{ deleted }`                                                  |
 * | `GET /webhooks/{id}/secret`             | 200 `{ secret }` (explicit reveal)                                 |
 * | `GET /webhooks/{id}/deliveries`         | 200 `{ deliveries, next_cursor? }`, newest first; `?status=&limit=&cursor=` |
 * | `POST /webhooks/{id}/test`              | 200 the test delivery after its one attempt, with its `response_status_code` and `duration_ms` at the top level |
 * | `POST /webhooks/{id}/replay`            | 202 `{ replayed, deliveries, attempts }`: retries failed deliveries `{ "since" }` |
 * | `GET /webhooks/deliveries/{id}`         | 200 one delivery with every attempt and its payload                |
 * | `POST /webhooks/deliveries/{id}/retry`  | 200 the delivery after one more attempt                            |
 */
import type { IncomingMessage } from 'node:http';
import { parseDuration } from '../../core/duration.js';
import { KeelError, NotFoundError, ValidationError } from '../../core/errors.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../../http/body.js';
import { requireAdmin, type Mount, type MountRequest } from '../../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../../http/respond.js';
import { checkUrl, type Resolver } from '../ssrf.js';
import { parseEndpointInput } from './endpoint-input.js';
import type { WebhooksRuntime } from './runtime.js';
import type { DeliveryStatus } from './types.js';

const BODY_LIMIT = 64 * 1024;
const STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed'];

/**
 * The management API as a mount for `AdminOptions.mounts.webhooks`. `runtime` is read per
 * request, so the mount can be created before the engine exists.
 */
export function adminMount(runtime: () => WebhooksRuntime, resolve?: Resolver): Mount {
  return async (r) => {
    const rt = runtime();
    const [first, second, third] = r.segments;
    const n = r.segments.length;
    if (n === 0) return route(r, { GET: () => list(rt, r), POST: () => create(rt, r, resolve) });
    if (first === 'deliveries' && n === 2)
      return route(r, { GET: () => deliveryView(rt, r, second!) });
    if (first === 'deliveries' && n === 3 && third === 'retry')
      return route(r, { POST: async () => send(r, 200, await rt.retry(second!)) });
    const id = first!;
    if (n === 1)
      return route(r, {
        GET: async () => send(r, 200, rt.view(await rt.endpoints.require(id))),
        PUT: () => update(rt, r, id, resolve),
        DELETE: async () => {
          await rt.endpoints.remove(id);
          rt.breakers.forget(id);
          send(r, 200, { deleted: id });
        },
      });
    if (n === 2 && second === 'secret')
      return route(r, {
        GET: async () => {
          // A secret lets its holder forge deliveries: no read for the read-only role.
          requireAdmin(r, "revealing an endpoint's secret");
          send(r, 200, { secret: (await rt.endpoints.require(id)).secret });
        },
      });
    if (n === 2 && second === 'deliveries') return route(r, { GET: () => deliveries(rt, r, id) });
    if (n === 2 && second === 'test')
      return route(r, { POST: async () => send(r, 200, await rt.test(id)) });
    if (n === 2 && second === 'replay') return route(r, { POST: () => replay(rt, r, id) });
    throw new NotFoundError(
      `no webhooks route ${r.req.method ?? ''} /webhooks/${r.segments.join('/')}; see docs/webhooks.md for the management API`,
    );
  };
}

type Handlers = Partial<Record<'GET' | 'POST' | 'PUT' | 'DELETE', () => Promise<void>>>;

async function route(r: MountRequest, handlers: Handlers): Promise<void> {
  const method = (r.req.method ?? 'GET') as keyof Handlers;
  const h = handlers[method];
  if (!h) throw new MethodNotAllowedError(r.req.method ?? '?', Object.keys(handlers).join(', '));
  if (method !== 'GET') requireAdmin(r, `${method} ${['/webhooks', ...r.segments].join('/')}`);
  await h();
}

function send(r: MountRequest, status: number, value: unknown): void {
  sendJson(r.res, status, value, r.closing ? ['connection', 'close'] : undefined);
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  const body = await readBody(req, BODY_LIMIT);
  if (body.length === 0) return undefined;
  if (type === undefined || !isJsonType(type)) throw unsupportedMediaType(type);
  return parseJson(body);
}

async function list(rt: WebhooksRuntime, r: MountRequest): Promise<void> {
  const all = await rt.endpoints.list();
  await rt.breakers.load(all.map((e) => e.id));
  send(r, 200, { endpoints: all.map((e) => rt.view(e)) });
}

/** Refuses a URL Keel would never deliver to; a name that does not resolve yet is allowed. */
async function checkEndpointUrl(rt: WebhooksRuntime, url: string, resolve?: Resolver) {
  const checked = await checkUrl(url, {
    allow: rt.options.allow,
    ...(resolve ? { resolve } : {}),
  });
  if (!checked.ok && checked.code !== 'dns_failed')
    throw new KeelError(`url refused: ${checked.reason}`, { code: checked.code, status: 400 });
}

async function create(rt: WebhooksRuntime, r: MountRequest, resolve?: Resolver): Promise<void> {
  const input = parseEndpointInput(await jsonBody(r.req), 'create');
  await checkEndpointUrl(rt, input.url!, resolve);
  const created = await rt.endpoints.create({ ...input, url: input.url! });
  send(r, 201, { ...rt.view(created), secret: created.secret });
}

async function update(
  rt: WebhooksRuntime,
  r: MountRequest,
  id: string,
  resolve?: Resolver,
): Promise<void> {
  const input = parseEndpointInput(await jsonBody(r.req), 'update');
  if (input.url !== undefined) await checkEndpointUrl(rt, input.url, resolve);
  const updated = await rt.endpoints.update(id, input);
  // Re-enabling an endpoint gives it a fresh start.
  if (input.is_active === true) await rt.breakers.reset(id);
  send(r, 200, rt.view(updated));
}

async function deliveries(rt: WebhooksRuntime, r: MountRequest, id: string): Promise<void> {
  await rt.endpoints.require(id);
  const q = new URLSearchParams(r.query);
  const status = q.get('status') ?? undefined;
  if (status !== undefined && !STATUSES.includes(status as DeliveryStatus))
    throw new ValidationError(`status must be one of ${STATUSES.join(', ')}, not "${status}"`);
  const limitText = q.get('limit');
  const limit = limitText === null ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new ValidationError(`limit must be a whole number from 1 to 1000, not "${limitText}"`);
  const cursor = q.get('cursor') ?? undefined;
  send(
    r,
    200,
    await rt.log.list(id, {
      limit,
      ...(status ? { status: status as DeliveryStatus } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
    }),
  );
}

async function deliveryView(rt: WebhooksRuntime, r: MountRequest, id: string): Promise<void> {
  const stored = await rt.log.get(id);
  if (!stored) throw new NotFoundError(`no delivery "${id}"`);
  const { body, ...rest } = stored.record;
  send(r, 200, { ...rest, payload: JSON.parse(body) as unknown });
}

async function replay(rt: WebhooksRuntime, r: MountRequest, id: string): Promise<void> {
  const body = await jsonBody(r.req);
  const since = (body as { since?: unknown } | undefined)?.since;
  send(r, 202, await rt.replay(id, parseSince(since, rt.host.clock.now())));
}

/** `since`: an ISO 8601 time, epoch milliseconds, or a duration back from now (`"24h"`). */
export function parseSince(since: unknown, now: number): number {
  if (typeof since === 'number' && Number.isFinite(since)) return since;
  if (typeof since === 'string') {
    if (/^\d{4}-\d{2}-\d{2}/.test(since)) {
      const t = Date.parse(since);
      if (Number.isFinite(t)) return t;
    } else {
      try {
        return now - parseDuration(since);
      } catch {
        // fall through to the error below
      }
    }
  }
  throw new ValidationError(
    'replay needs {"since": ...}: an ISO 8601 time ("2026-01-01T00:00:00Z"), epoch milliseconds, or a duration back from now ("24h")',
  );
}
