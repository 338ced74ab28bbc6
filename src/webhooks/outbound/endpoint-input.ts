/**
 * Validation of endpoint fields as the management API receives them. Every refusal is a
 * `ValidationError` (400, code `validation_failed`) that names the field and what is wrong.
 */
import { ValidationError } from '../../core/errors.js';

/** The fields a create (`POST /webhooks`) or an update (`PUT /webhooks/{id}`) may set. */
export interface EndpointInput {
  name?: string;
  url?: string;
  events?: string[];
  is_active?: boolean;
}

const EVENT_TYPE = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;
const MAX_EVENTS = 100;

/**
 * Checks an event type as `publish` takes it: dot-separated words of letters, digits, `_`, `-`
 * and `:`, at most 128 characters (`order.shipped`, `invoice.payment_failed`).
 */
export function checkEventType(type: unknown): string {
  if (typeof type !== 'string' || type.length === 0 || type.length > 128 || !EVENT_TYPE.test(type))
    throw new ValidationError(
      `event type ${JSON.stringify(type)} is not valid: use dot-separated words of letters, digits, "_", "-" or ":" (e.g. "order.shipped"), at most 128 characters`,
    );
  return type;
}

/** Checks a subscription pattern: an event type, `prefix.*`, or `*`. */
function checkPattern(pattern: unknown, i: number): string {
  if (pattern === '*') return pattern;
  if (typeof pattern === 'string' && pattern.endsWith('.*')) {
    checkEventType(pattern.slice(0, -2));
    return pattern;
  }
  try {
    return checkEventType(pattern);
  } catch {
    throw new ValidationError(
      `events[${i}] ${JSON.stringify(pattern)} is not valid: use an event type ("order.shipped"), a prefix ("order.*") or "*" for all`,
    );
  }
}

/**
 * Parses a JSON body into endpoint fields. `create` requires `url`; an update may set any
 * subset. Unknown fields are refused, so a typo (`active` for `is_active`) is not ignored.
 */
export function parseEndpointInput(body: unknown, mode: 'create' | 'update'): EndpointInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ValidationError(
      'the body must be a JSON object such as {"url": "https://example.com/hooks", "events": ["order.shipped"]}',
    );
  const b = body as Record<string, unknown>;
  const known = ['name', 'url', 'events', 'is_active'];
  const unknown = Object.keys(b).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new ValidationError(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; an endpoint has ${known.join(', ')}`,
    );
  const out: EndpointInput = {};
  if (b.name !== undefined) {
    if (typeof b.name !== 'string' || b.name.length > 200)
      throw new ValidationError('name must be a string of at most 200 characters');
    out.name = b.name;
  }
  if (b.url !== undefined) {
    if (typeof b.url !== 'string' || b.url.length > 2048)
      throw new ValidationError('url must be a string of at most 2048 characters');
    out.url = b.url;
  } else if (mode === 'create') {
    throw new ValidationError('url is required: the http(s) URL deliveries are POSTed to');
  }
  if (b.events !== undefined) {
    if (!Array.isArray(b.events) || b.events.length === 0 || b.events.length > MAX_EVENTS)
      throw new ValidationError(
        `events must be a non-empty array of at most ${MAX_EVENTS} event types (or ["*"] for all)`,
      );
    out.events = [...new Set(b.events.map(checkPattern))];
  }
  if (b.is_active !== undefined) {
    if (typeof b.is_active !== 'boolean') throw new ValidationError('is_active must be a boolean');
    out.is_active = b.is_active;
  }
  return out;
}

/** True when an endpoint subscribed with `patterns` receives events of `type`. */
export function subscribes(patterns: readonly string[], type: string): boolean {
  for (const p of patterns) {
    if (p === '*' || p === type) return true;
    if (p.endsWith('.*') && type.startsWith(p.slice(0, -1))) return true;
  }
  return false;
}
