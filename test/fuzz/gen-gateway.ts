import { isJsonType } from '../../src/http/body.js';
import { http, JSON_TYPE, type Generator } from './generator.js';
import { GATEWAY_BODY_LIMIT, GATEWAY_KEY } from './gateway.js';
import type { Rand } from './random.js';
import { badBody, CONTENT_TYPES, jsonValue, pct, segment, unicodeText } from './values.js';

/**
 * The gateway (`/gateway/...` on the ingress, see gateway.ts): a greeting and a counter increment
 * with the right key are valid; everything else — no key, a wrong or malformed key, an unknown
 * route, another method, a body that is not JSON, too large or of the wrong type, a field that
 * does not fit the mapping, a bad Idempotency-Key — must be refused with its 4xx and change
 * nothing.
 */
const AUTH: [string, string] = ['authorization', `Bearer ${GATEWAY_KEY}`];
const SAFE = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
/** Content types the ingress refuses (some odd-looking ones, `application/json;;;charset`, are JSON). */
const NOT_JSON = CONTENT_TYPES.filter((t) => !isJsonType(t));

function name(r: Rand): string {
  return r.chars(r.int(1, 16), SAFE);
}

function counter(r: Rand): string {
  return `/gateway/v1/counters/k${r.int(0, 20)}/add`;
}

function wrongKey(r: Rand): string {
  return r.pick([
    GATEWAY_KEY.slice(0, -1) + (GATEWAY_KEY.endsWith('f') ? 'e' : 'f'),
    GATEWAY_KEY.toUpperCase(),
    `${GATEWAY_KEY}x`,
    r.chars(r.int(1, 64), SAFE),
    'kgw_' + r.chars(32, SAFE),
  ]);
}

function badAuthorization(r: Rand): string {
  return r.pick([
    '',
    'Bearer',
    'Bearer ',
    `Basic ${Buffer.from(`fuzz:${GATEWAY_KEY}`).toString('base64')}`,
    `Bearer ${GATEWAY_KEY} ${GATEWAY_KEY}`,
    `Bearer ${'k'.repeat(r.int(257, 5000))}`,
    `bearer\t${wrongKey(r)}`,
    unicodeText(r, r.int(1, 20)).replace(/[\r\n]/g, ''),
  ]);
}

export const gatewayValid: Generator[] = [
  {
    name: 'gateway-greet',
    valid: true,
    weight: 2,
    make: (r) => http('ingress', 'POST', `/gateway/v1/greet/${name(r)}`, [AUTH]),
  },
  {
    name: 'gateway-counter',
    valid: true,
    weight: 2,
    make: (r) =>
      http(
        'ingress',
        'POST',
        counter(r),
        [AUTH, JSON_TYPE],
        JSON.stringify({ amount: r.int(-5, 5), note: jsonValue(r, 2) }),
      ),
  },
];

export const gatewayInvalid: Generator[] = [
  {
    name: 'gateway-no-key',
    valid: false,
    weight: 2,
    make: (r) =>
      http(
        'ingress',
        'POST',
        r.chance(0.5) ? counter(r) : `/gateway/${name(r)}/${name(r)}`,
        [JSON_TYPE],
        '{"amount":1}',
        {
          expect: { status: 401, code: 'unauthorized' },
        },
      ),
  },
  {
    name: 'gateway-wrong-key',
    valid: false,
    weight: 2,
    make: (r) =>
      http(
        'ingress',
        'POST',
        counter(r),
        [['authorization', `Bearer ${wrongKey(r)}`], JSON_TYPE],
        '{"amount":1}',
        {
          expect: { status: 401, code: 'unauthorized' },
        },
      ),
  },
  {
    name: 'gateway-bad-authorization',
    valid: false,
    weight: 1,
    make: (r) =>
      http(
        'ingress',
        'POST',
        `/gateway/v1/greet/${name(r)}`,
        [['authorization', badAuthorization(r)]],
        undefined,
        {
          expect: { status: 401 },
        },
      ),
  },
  {
    name: 'gateway-unknown-route',
    valid: false,
    weight: 1,
    make: (r) =>
      http(
        'ingress',
        r.pick(['GET', 'POST', 'PUT', 'DELETE']),
        `/gateway/v2/${name(r)}/${pct(name(r))}`,
        [AUTH],
        undefined,
        {
          expect: { status: 404, code: 'route_not_found' },
        },
      ),
  },
  {
    name: 'gateway-odd-path',
    valid: false,
    weight: 1,
    // Odd segments (bad encodings, traversal, very long): a 400 or a 404, never anything else.
    make: (r) => http('ingress', 'POST', `/gateway/v1/${segment(r)}/${segment(r)}`, [AUTH]),
  },
  {
    name: 'gateway-wrong-method',
    valid: false,
    weight: 1,
    make: (r) =>
      http('ingress', r.pick(['GET', 'PUT', 'PATCH', 'DELETE']), counter(r), [AUTH], undefined, {
        expect: { status: 405, code: 'method_not_allowed' },
      }),
  },
  {
    name: 'gateway-bad-body',
    valid: false,
    weight: 2,
    make: (r) =>
      http('ingress', 'POST', counter(r), [AUTH, JSON_TYPE], badBody(r, GATEWAY_BODY_LIMIT)),
  },
  {
    name: 'gateway-bad-content-type',
    valid: false,
    weight: 1,
    make: (r) =>
      http(
        'ingress',
        'POST',
        counter(r),
        [AUTH, ['content-type', r.pick(NOT_JSON)]],
        '{"amount":1}',
        {
          expect: { status: 415 },
        },
      ),
  },
  {
    name: 'gateway-mapping-mismatch',
    valid: false,
    weight: 2,
    make: (r) =>
      http(
        'ingress',
        'POST',
        counter(r),
        [AUTH, JSON_TYPE],
        JSON.stringify(
          r.pick<unknown>([
            {},
            { amount: 'five' },
            { amount: 1.5 },
            { amount: null },
            { amount: [1] },
            [],
            'amount',
            { Amount: 1 },
            { __proto__: { amount: 1 } },
            JSON.parse('{"__proto__":{"amount":1}}'),
          ]),
        ),
        { expect: { status: 400, code: 'invalid_request' } },
      ),
  },
  {
    name: 'gateway-bad-idempotency-key',
    valid: false,
    weight: 1,
    make: (r) =>
      http(
        'ingress',
        'POST',
        counter(r),
        [AUTH, JSON_TYPE, ['idempotency-key', r.pick(['', ' ', 'x'.repeat(r.int(257, 2000))])]],
        '{"amount":1}',
        { expect: { status: 400, code: 'invalid_request' } },
      ),
  },
];
