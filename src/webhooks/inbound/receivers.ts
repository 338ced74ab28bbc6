/**
 * Inbound receivers, mounted on the ingress under `/webhooks`: `POST /webhooks/{name}`.
 *
 * Each request is verified over its raw bytes before anything else; a failure answers 401
 * `invalid_signature` and changes nothing. A verified request is split into events; each event is
 * deduplicated on the provider's id (a redelivery answers 200 and does nothing), then routed:
 * to a handler, started once per event id (its idempotency key), or to an awakeable. GitHub and
 * Twilio sign neither their id nor a timestamp: a captured request replayed under a fresh id
 * would pass, so their events are deduplicated on the hash of the signed content as well (and
 * that hash is their idempotency key), for the same window.
 *
 * Deduplication has two layers. The invocation's idempotency key holds while the invocation is
 * retained (the engine's retention); a marker in the key-value space (scope
 * `keel.webhooks.inbound`) holds for `dedupeWindow` (7 days). The marker is written after the
 * invocation is durably accepted, so a crash in between leaves the idempotency key to catch
 * the provider's retry, never an event acknowledged and lost.
 */
import { parseDuration } from '../../core/duration.js';
import { ConflictError, NotFoundError } from '../../core/errors.js';
import type { Engine } from '../../engine/engine.js';
import { readBody } from '../../http/body.js';
import type { Mount, MountRequest } from '../../http/mount.js';
import { MethodNotAllowedError, sendJson, sendText } from '../../http/respond.js';
import { WebhookConfigError, WebhookVerificationError } from '../errors.js';
import { SCOPES } from '../outbound/types.js';
import { parseRequest, verifyRequest, type ParsedEvent } from './providers.js';
import type { InboundEvent, InboundOptions, InboundRoute, ReceiverOptions } from './types.js';

/** How one event of a request was handled. */
export interface ReceivedEvent {
  id: string;
  type: string;
  status: 'accepted' | 'duplicate' | 'ignored';
  invocationId?: string;
  /** Why it was ignored. */
  reason?: string;
}

const PROVIDERS = new Set([
  'stripe',
  'github',
  'slack',
  'twilio',
  'sendgrid',
  'shippo',
  'standard-webhooks',
]);
const TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

/** Checks receiver options at startup, so a typo fails the start rather than the first request. */
export function checkReceivers(receivers: Record<string, ReceiverOptions>): void {
  for (const [name, r] of Object.entries(receivers)) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name))
      throw new WebhookConfigError(
        `receiver name "${name}" must be a URL path segment (letters, digits, "_", "-", ".")`,
      );
    if (!PROVIDERS.has(r?.provider))
      throw new WebhookConfigError(
        `receiver "${name}": provider must be one of ${[...PROVIDERS].join(', ')}, not ${JSON.stringify(r?.provider)}`,
      );
    if (typeof r.route !== 'function')
      throw new WebhookConfigError(`receiver "${name}": route must be a function of the event`);
    if (r.secret === undefined || r.secret === '')
      throw new WebhookConfigError(`receiver "${name}": secret is required`);
  }
}

/**
 * The receivers as a mount for `IngressOptions.mounts.webhooks`. `engine` is read per request,
 * so the mount can be created before the engine exists.
 */
export function receiversMount(engine: () => Engine, options: InboundOptions): Mount {
  const receivers = options.receivers ?? {};
  checkReceivers(receivers);
  const bodyLimit = options.bodyLimit ?? 1024 * 1024;
  const windowMs = parseDuration(options.dedupeWindow ?? '7d');
  return async (r) => {
    const name = r.segments[0];
    // Own properties only: `/webhooks/toString` must not find Object.prototype's function.
    const receiver =
      name === undefined || !Object.hasOwn(receivers, name) ? undefined : receivers[name];
    if (!receiver || r.segments.length !== 1) {
      const names = Object.keys(receivers).map((n) => `/webhooks/${n}`);
      throw new NotFoundError(
        `no webhook receiver at /webhooks/${r.segments.join('/')}; configured: ${names.join(', ') || '(none)'}`,
      );
    }
    if (r.req.method !== 'POST') throw new MethodNotAllowedError(r.req.method ?? '?', 'POST');
    const e = engine();
    const raw = await readBody(r.req, bodyLimit);
    const facts = {
      raw,
      headers: r.req.headers,
      url: publicUrl(r, receiver),
      now: e.clock.now(),
    };
    const verified = verifyRequest(receiver, facts);
    if (!verified.ok) throw new WebhookVerificationError(verified.provider, verified.reason);
    const parsed = parseRequest(receiver, verified, facts);
    if ('reply' in parsed) return reply(r, receiver, 200, parsed.reply);
    const results: ReceivedEvent[] = [];
    // One at a time: events of one request reach their handlers in the order they were sent.
    for (const event of parsed.events)
      results.push(await receive(e, name!, receiver, event, windowMs));
    reply(r, receiver, 200, { events: results });
  };
}

function publicUrl(r: MountRequest, receiver: ReceiverOptions): string {
  const path = r.req.url ?? '/';
  if (receiver.publicUrl !== undefined) return receiver.publicUrl.replace(/\/$/, '') + path;
  return `http://${r.req.headers.host ?? 'localhost'}${path}`;
}

function reply(r: MountRequest, receiver: ReceiverOptions, status: number, body: unknown): void {
  const close = r.closing ? ['connection', 'close'] : [];
  if (receiver.provider === 'twilio') {
    // Twilio reads the answer to an incoming message or call as TwiML: an empty one does nothing.
    if (r.res.headersSent) return;
    r.res.writeHead(status, {
      'content-type': 'text/xml',
      'content-length': Buffer.byteLength(TWIML_EMPTY),
      ...(r.closing ? { connection: 'close' } : {}),
    });
    r.res.end(TWIML_EMPTY);
    return;
  }
  if (typeof body === 'string') sendText(r.res, status, body, close);
  else sendJson(r.res, status, body, close);
}

async function receive(
  engine: Engine,
  name: string,
  receiver: ReceiverOptions,
  parsed: ParsedEvent,
  windowMs: number,
): Promise<ReceivedEvent> {
  const now = engine.clock.now();
  // A receiver name has no '#', so the replay marker and idempotency key of a signed content hash
  // never collide with those of a provider id (which a sender chooses freely).
  const markerKeys = [`${name}/${parsed.id}`];
  if (parsed.replayKey !== undefined) markerKeys.push(`${name}#sha256/${parsed.replayKey}`);
  const base = { id: parsed.id, type: parsed.type };
  for (const markerKey of markerKeys) {
    const marker = await engine.store.getKv(SCOPES.inbound, markerKey);
    if (marker && (marker.expiresAt === undefined || marker.expiresAt > now)) {
      const invocationId = (marker.value as { invocationId?: string }).invocationId;
      return { ...base, status: 'duplicate', ...(invocationId ? { invocationId } : {}) };
    }
  }
  const event: InboundEvent = {
    provider: receiver.provider,
    receiver: name,
    id: parsed.id,
    type: parsed.type,
    data: parsed.data,
    receivedAt: now,
  };
  const route: InboundRoute = await receiver.route(event);
  let result: ReceivedEvent;
  if (!route) {
    return { ...base, status: 'ignored', reason: 'the route returned nothing for this event' };
  } else if ('awakeable' in route) {
    result = await completeAwakeable(engine, base, route);
  } else {
    const sent = await engine.send({
      service: route.target.name,
      handler: route.handler,
      ...(route.key !== undefined ? { key: route.key } : {}),
      input: route.input === undefined ? event : route.input,
      // The signed content, when the id is not signed: concurrent replays under fresh ids
      // still meet on one invocation.
      idempotencyKey:
        parsed.replayKey !== undefined
          ? `webhook:${name}#sha256:${parsed.replayKey}`
          : `webhook:${name}:${parsed.id}`,
    });
    result = {
      ...base,
      status: sent.existing ? 'duplicate' : 'accepted',
      invocationId: sent.invocationId,
    };
  }
  const value = { at: now, ...(result.invocationId ? { invocationId: result.invocationId } : {}) };
  await engine.store.write(
    markerKeys.map((key) => ({
      op: 'kv.put' as const,
      scope: SCOPES.inbound,
      key,
      value,
      expiresAt: now + windowMs,
    })),
  );
  return result;
}

async function completeAwakeable(
  engine: Engine,
  base: { id: string; type: string },
  route: { awakeable: string; value?: unknown } | { awakeable: string; reject: string },
): Promise<ReceivedEvent> {
  try {
    if ('reject' in route) await engine.rejectAwakeable(route.awakeable, route.reject);
    else await engine.resolveAwakeable(route.awakeable, route.value ?? null);
    return { ...base, status: 'accepted' };
  } catch (err) {
    // Completed before: this is a redelivery. Unknown: nothing waits for it (any more), and a
    // non-2xx answer would only make the provider retry in vain.
    if (err instanceof ConflictError) return { ...base, status: 'duplicate' };
    if (err instanceof NotFoundError)
      return { ...base, status: 'ignored', reason: `no awakeable ${route.awakeable}` };
    throw err;
  }
}
