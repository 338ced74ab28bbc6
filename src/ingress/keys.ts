/**
 * Ingress API keys (`KEEL_INGRESS_KEYS`): when set, a client must present one of them to invoke,
 * send, attach, resolve an awakeable or read the OpenAPI document. Presented as the gateway's
 * keys are (`Authorization: Bearer <key>`, answered 401 `unauthorized` with
 * `WWW-Authenticate: Bearer`), or as `X-API-Key: <key>` for clients that keep `Authorization`
 * for something else.
 *
 * Not checked here, because they authenticate on their own terms:
 * - `GET /health`: load balancers probe it without credentials, and it reveals nothing.
 * - inbound webhooks (`/webhooks/{name}`): the provider cannot send our key; the receiver
 *   verifies the provider's signature instead.
 * - the gateway (`/gateway/...`): its own keys (`KEEL_GATEWAY_KEYS`) in the same header.
 * - OAuth (`/oauth/{provider}/connect|callback`): a browser follows these links, and the
 *   callback is verified by its `state`.
 *
 * `GET /openapi.json` does need a key: it lists every service, handler and input schema, which
 * the ingress otherwise shows only to loopback clients; the dashboard reads the same document
 * from the admin API, behind the admin token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { KeelError } from '../core/errors.js';

/** The shortest ingress key accepted: 32 characters, as the admin tokens. */
export const MIN_INGRESS_KEY_LENGTH = 32;

/** Mounts that authenticate their own requests, so the ingress keys do not apply to them. */
export const SELF_AUTHENTICATED_MOUNTS: ReadonlySet<string> = new Set([
  'webhooks',
  'gateway',
  'oauth',
]);

/** A request without a valid ingress key. HTTP 401 `unauthorized`. */
export class IngressUnauthorizedError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'unauthorized', status: 401 });
  }
}

/**
 * Checks the keys' form at start (printable ASCII without spaces, at least 32 characters),
 * never printing a key. Returns them deduplicated.
 *
 * @example
 * ```ts
 * checkIngressKeys(parseIngressKeys(process.env.KEEL_INGRESS_KEYS ?? ''));
 * ```
 */
export function checkIngressKeys(keys: readonly string[]): string[] {
  keys.forEach((key, i) => {
    const which = keys.length === 1 ? 'the ingress key' : `ingress key ${i + 1} of ${keys.length}`;
    if (typeof key !== 'string' || !/^[\x21-\x7e]+$/.test(key))
      throw new TypeError(
        `${which} (KEEL_INGRESS_KEYS, option ingressKeys) must be printable ASCII without spaces, e.g. the output of \`openssl rand -hex 32\``,
      );
    if (key.length < MIN_INGRESS_KEY_LENGTH)
      throw new TypeError(
        `${which} (KEEL_INGRESS_KEYS, option ingressKeys) is ${key.length} characters long; it must be at least ` +
          `${MIN_INGRESS_KEY_LENGTH} characters of random, e.g. the output of \`openssl rand -hex 32\``,
      );
  });
  return [...new Set(keys)];
}

/** `KEEL_INGRESS_KEYS`: comma-separated keys. */
export function parseIngressKeys(text: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => s === ''))
    throw new TypeError(
      'KEEL_INGRESS_KEYS has an empty item: give the keys separated by single commas',
    );
  return checkIngressKeys(items);
}

const HOW =
  'send one of the ingress API keys (KEEL_INGRESS_KEYS) as the header Authorization: Bearer <key> or X-API-Key: <key>';

/**
 * Builds the check of a request's key. Every configured key is compared with the given one, as
 * SHA-256 digests through `timingSafeEqual`, every time: the time taken tells nothing about
 * the keys. `X-API-Key` wins over `Authorization` when both are sent.
 *
 * @example
 * ```ts
 * const check = ingressKeyCheck(['...32+ characters...']);
 * check(req); // throws IngressUnauthorizedError without a valid key
 * ```
 */
export function ingressKeyCheck(keys: readonly string[]): (req: IncomingMessage) => void {
  const digests = checkIngressKeys(keys).map(digest);
  return (req) => {
    const given = presented(req);
    if (given === undefined)
      throw new IngressUnauthorizedError(`this ingress needs an API key: ${HOW}`);
    const d = digest(given);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(d, k) || ok;
    if (!ok) throw new IngressUnauthorizedError(`the API key is not valid: ${HOW}`);
  };
}

function presented(req: IncomingMessage): string | undefined {
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x.trim() !== '') return x.trim();
  const auth = req.headers.authorization;
  if (auth === undefined) return undefined;
  const space = auth.indexOf(' ');
  if (space === -1 || auth.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  const key = auth.slice(space + 1).trim();
  return key === '' ? undefined : key;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
