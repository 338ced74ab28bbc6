import type { HttpCase } from './cases.js';
import { ADMIN_TOKEN, INTEGRATION_NAMES, USER_TOKEN } from './services.js';
import { http, JSON_TYPE, someInvocation, type Generator } from './generator.js';
import type { Known } from './known.js';
import type { Rand } from './random.js';
import { badBody, jsonValue, segment } from './values.js';

/**
 * Requests to the admin API, with the admin token (valid and invalid), with the read-only user
 * token, and without a valid token (always 401).
 */

const AUTH: [string, string] = ['authorization', `Bearer ${ADMIN_TOKEN}`];
const USER_AUTH: [string, string] = ['authorization', `Bearer ${USER_TOKEN}`];
const ACTIONS = ['cancel', 'kill', 'purge', 'resume', 'pause', 'retry-now', 'restart'];
const STATUSES = [
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
  'failed',
];
const SERVICES = ['Counter', 'Waiter', 'OrderSaga', 'Greeter', 'OrderWorkflow'];

function listQuery(r: Rand): string {
  const parts: string[] = [];
  if (r.chance(0.4)) parts.push(`status=${r.pick(STATUSES)}`);
  if (r.chance(0.3)) parts.push(`service=${r.pick(SERVICES)}`);
  if (r.chance(0.2)) parts.push(`key=k${r.int(0, 20)}`);
  if (r.chance(0.5)) parts.push(`limit=${r.int(1, 1000)}`);
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

/** Everything but the right token. */
function badAuth(r: Rand): [string, string][] {
  return r.pick<[string, string][]>([
    [],
    [['authorization', 'Bearer']],
    [['authorization', 'Bearer ']],
    [['authorization', `Bearer ${ADMIN_TOKEN}x`]],
    [['authorization', `Bearer ${ADMIN_TOKEN.slice(0, -1)}`]],
    [['authorization', `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`]],
    [['authorization', ADMIN_TOKEN]],
    [['authorization', `Token ${ADMIN_TOKEN}`]],
    [['authorization', `Bearer ${'A'.repeat(r.int(100, 6000))}`]],
    [
      ['authorization', 'Bearer x'],
      ['authorization', `Bearer ${ADMIN_TOKEN}`],
    ],
    [['x-admin-token', ADMIN_TOKEN]],
  ]);
}

export const adminValid: Generator[] = [
  {
    name: 'admin-list',
    valid: true,
    weight: 3,
    make: (r) => http('admin', 'GET', `/invocations${listQuery(r)}`, [AUTH]),
  },
  {
    name: 'admin-read',
    valid: true,
    weight: 3,
    make: (r, k) =>
      http('admin', 'GET', `/invocations/${someInvocation(r, k)}${r.pick(['', '/journal'])}`, [
        AUTH,
      ]),
  },
  {
    name: 'admin-action',
    valid: true,
    weight: 2,
    make: (r, k) =>
      http('admin', 'POST', `/invocations/${someInvocation(r, k)}/${r.pick(ACTIONS)}`, [AUTH]),
  },
  {
    name: 'admin-restart',
    valid: true,
    weight: 1,
    // A restart as new, or from a journal prefix (`fromEntry`): 202, or 400/409 for an entry
    // out of range or one that cannot be carried over, 409 for an unfinished invocation.
    make: (r, k) => {
      const body = r.pick<unknown>([undefined, {}, { fromEntry: r.int(0, 6) }]);
      return http(
        'admin',
        'POST',
        `/invocations/${someInvocation(r, k)}/restart`,
        body === undefined ? [AUTH] : [AUTH, JSON_TYPE],
        body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
      );
    },
  },
  {
    name: 'admin-other',
    valid: true,
    weight: 1,
    make: (r) =>
      http('admin', 'GET', r.pick(['/health', '/webhooks', '/queues', `/queues/${segment(r)}`]), [
        AUTH,
      ]),
  },
];

export const adminInvalid: Generator[] = [
  {
    name: 'admin-no-token',
    valid: false,
    weight: 4,
    make: (r, k) => {
      const [method, path] = r.pick<[string, string]>([
        ['GET', `/invocations${listQuery(r)}`],
        ['GET', `/invocations/${someInvocation(r, k)}`],
        ['POST', `/invocations/${someInvocation(r, k)}/${r.pick(ACTIONS)}`],
        ['GET', '/webhooks'],
        ['POST', '/webhooks'],
        ['DELETE', `/webhooks/${segment(r)}`],
        ['GET', '/health'],
        ['GET', '/queues'],
        ['GET', `/${segment(r)}`],
      ]);
      const body =
        method === 'POST' && path === '/webhooks'
          ? JSON.stringify({ url: 'http://127.0.0.1:1/x' })
          : undefined;
      return http('admin', method, path, [...badAuth(r), ...(body ? [JSON_TYPE] : [])], body);
    },
  },
  {
    name: 'admin-bad-query',
    valid: false,
    weight: 3,
    make: (r) => {
      const q = r.pick([
        'limit=0',
        'limit=1001',
        'limit=-1',
        'limit=abc',
        'limit=1e3',
        `limit=${'9'.repeat(30)}`,
        'status=bogus',
        'status=',
        'status=completed&status=failed',
        'nope=1',
        `cursor=${segment(r)}`,
        `cursor=${Buffer.from(JSON.stringify(jsonValue(r))).toString('base64url')}`,
        'cursor=%ff',
        `service=${segment(r)}&cursor=${r.chars(r.int(1, 40), 'abcdef0123456789_=-')}`,
        '%zz=1',
        'limit',
      ]);
      return http('admin', 'GET', `/invocations?${q}`, [AUTH]);
    },
  },
  {
    name: 'admin-bad-target',
    valid: false,
    weight: 3,
    make: (r, k) => {
      const id = r.pick([
        segment(r),
        `${someInvocation(r, k)}x`,
        `inv_${r.chars(26, 'ABCDEFGHIJKLMNOP0123456789')}`,
      ]);
      const [method, path] = r.pick<[string, string]>([
        ['GET', `/invocations/${id}`],
        ['GET', `/invocations/${id}/journal`],
        ['POST', `/invocations/${id}/${r.pick(ACTIONS)}`],
        [
          r.pick(['GET', 'PUT', 'DELETE', 'PATCH']),
          `/invocations/${someInvocation(r, k)}/${r.pick(ACTIONS)}`,
        ],
        [r.pick(['POST', 'DELETE']), `/invocations/${someInvocation(r, k)}`],
        ['POST', '/invocations'],
        ['GET', `/invocations/${someInvocation(r, k)}/${segment(r)}`],
        [r.pick(['GET', 'POST']), `/${segment(r)}/${segment(r)}`],
        ['GET', `/webhooks/${segment(r)}`],
        ['GET', `/webhooks/deliveries/${segment(r)}`],
        ['POST', `/webhooks/deliveries/${segment(r)}/retry`],
        ['DELETE', `/webhooks/${segment(r)}`],
        ['GET', `/webhooks/${segment(r)}/deliveries?limit=${segment(r)}`],
      ]);
      return http('admin', method, path, [AUTH]);
    },
  },
  {
    name: 'admin-bad-restart',
    valid: false,
    weight: 1,
    make: (r, k) => {
      const body = r.chance(0.3)
        ? badBody(r, 16 * 1024)
        : Buffer.from(
            JSON.stringify(
              r.pick<unknown>([
                { fromEntry: -1 },
                { fromEntry: 1.5 },
                { fromEntry: '2' },
                { fromEntry: null },
                { fromEntry: 1e30 },
                { from: 2 },
                { fromEntry: 1, extra: true },
                [1],
                'fromEntry',
              ]),
            ),
          );
      return http(
        'admin',
        'POST',
        `/invocations/${someInvocation(r, k)}/restart`,
        [AUTH, JSON_TYPE],
        body,
      );
    },
  },
  {
    name: 'admin-bad-endpoint',
    valid: false,
    weight: 2,
    make: (r) => {
      const body = r.chance(0.5)
        ? badBody(r, 64 * 1024)
        : Buffer.from(
            JSON.stringify(
              r.pick<unknown>([
                {},
                { url: 'not a url' },
                { url: 'ftp://example.com/x' },
                { url: 'http://169.254.169.254/latest' },
                { url: 'http://127.0.0.1:1/x', events: 'all' },
                { url: 'http://127.0.0.1:1/x', events: [5] },
                jsonValue(r),
              ]),
            ),
          );
      return http(
        'admin',
        r.pick(['POST', 'PUT']),
        r.chance(0.7) ? '/webhooks' : `/webhooks/${segment(r)}`,
        [AUTH, JSON_TYPE],
        body,
      );
    },
  },
];

/** A known endpoint id (most of the time, once there are some), else a made-up one of the same shape. */
function someEndpoint(r: Rand, k: Known): string {
  if (k.endpoints.length > 0 && r.chance(0.8)) return r.pick(k.endpoints);
  return `ep_${r.chars(20, '0123456789abcdef')}`;
}

function someIntegration(r: Rand): string {
  return r.chance(0.85) ? r.pick(INTEGRATION_NAMES) : r.chars(r.int(1, 12), 'abcdefghijXYZ');
}

/**
 * An endpoint URL that passes the SSRF check without ever being delivered to: `.invalid` never
 * resolves (RFC 2606), and a name that does not resolve yet is allowed. The fuzz services
 * publish nothing, so no delivery is ever attempted.
 */
const ENDPOINT_URL = 'https://fuzz-endpoint.invalid/hook';

/** Admin requests that change something: valid with the admin token, 403 with the user token. */
function change(r: Rand, k: Known): [string, string, string | undefined] {
  return r.weighted<() => [string, string, string | undefined]>([
    [4, () => ['POST', `/invocations/${someInvocation(r, k)}/${r.pick(ACTIONS)}`, undefined]],
    [
      2,
      () => [
        'POST',
        '/webhooks',
        JSON.stringify({ url: ENDPOINT_URL, ...(r.chance(0.5) ? { events: ['order.*'] } : {}) }),
      ],
    ],
    [
      1,
      () => ['PUT', `/webhooks/${someEndpoint(r, k)}`, JSON.stringify({ url: `${ENDPOINT_URL}2` })],
    ],
    [1, () => ['DELETE', `/webhooks/${someEndpoint(r, k)}`, undefined]],
    [2, () => ['GET', `/webhooks/${someEndpoint(r, k)}/secret`, undefined]],
    [1, () => ['POST', `/webhooks/${someEndpoint(r, k)}/test`, undefined]],
    [1, () => ['POST', `/webhooks/${someEndpoint(r, k)}/replay`, '{}']],
    [1, () => ['POST', `/webhooks/deliveries/${someEndpoint(r, k)}_0/retry`, undefined]],
    [2, () => ['POST', `/integrations/${someIntegration(r)}/circuit/reset`, undefined]],
  ])();
}

/** Admin reads: the user token's answer must be the admin token's. */
function read(r: Rand, k: Known): string {
  return r.weighted<() => string>([
    [3, () => `/invocations${listQuery(r)}`],
    [3, () => `/invocations/${someInvocation(r, k)}${r.pick(['', '/journal'])}`],
    [1, () => '/health'],
    [1, () => '/queues'],
    [1, () => '/webhooks'],
    [1, () => `/webhooks/${someEndpoint(r, k)}${r.pick(['', '/deliveries'])}`],
    [1, () => `/webhooks/deliveries/${someEndpoint(r, k)}_0`],
    [2, () => '/integrations/status'],
    [2, () => `/integrations/${someIntegration(r)}/health`],
    // Refused reads (bad query, unknown path, wrong method): refused alike for both roles.
    [1, () => `/invocations?${r.pick(['limit=0', 'status=bogus', 'nope=1'])}`],
    [1, () => `/invocations/${someInvocation(r, k)}/${r.pick(ACTIONS)}`],
    [1, () => `/integrations/${someIntegration(r)}/circuit/reset`],
    [1, () => `/${r.chars(r.int(1, 8), 'abcdefgh')}`],
  ])();
}

export const adminChangeValid: Generator[] = [
  {
    name: 'admin-change',
    valid: true,
    weight: 1,
    make: (r, k) => {
      const [method, path, body] = change(r, k);
      return http('admin', method, path, body ? [AUTH, JSON_TYPE] : [AUTH], body);
    },
  },
];

/**
 * The read-only user token: every change answers 403 `forbidden` (and, in invalid batches, is
 * state-checked); reads are compared with the admin's; a wrong user token answers 401.
 */
export const adminUserInvalid: Generator[] = [
  {
    name: 'admin-user-change',
    valid: false,
    weight: 4,
    make: (r, k) => {
      const [method, path, body] = change(r, k);
      // The scheme is case-insensitive: `bearer` is the user still, and still read-only.
      const auth: [string, string] = r.chance(0.1)
        ? ['authorization', `bearer ${USER_TOKEN}`]
        : USER_AUTH;
      return http('admin', method, path, body ? [auth, JSON_TYPE] : [auth], body, {
        expect: { status: 403, code: 'forbidden' },
      });
    },
  },
  {
    name: 'admin-user-read',
    valid: false,
    weight: 4,
    make: (r, k) => {
      const path = read(r, k);
      const twin = http('admin', 'GET', path, [AUTH]) as HttpCase;
      return {
        ...http('admin', 'GET', path, [USER_AUTH], undefined, {
          never: [401, 403],
          twin: { ...twin, gen: 'admin-user-read-twin', valid: false, readOnly: true },
        }),
        readOnly: true,
      };
    },
  },
  {
    name: 'admin-user-bad-token',
    valid: false,
    weight: 2,
    make: (r, k) => {
      const auth = r.pick<[string, string][]>([
        [['authorization', `Bearer ${USER_TOKEN}x`]],
        [['authorization', `Bearer ${USER_TOKEN.slice(0, -1)}`]],
        [['authorization', `Bearer ${USER_TOKEN.toUpperCase()}`]],
        [['authorization', `Bearer ${USER_TOKEN}${ADMIN_TOKEN}`]],
        [['authorization', `Basic ${Buffer.from(`user:${USER_TOKEN}`).toString('base64')}`]],
        [['authorization', USER_TOKEN]],
        [['authorization', `Token ${USER_TOKEN}`]],
        [['x-user-token', USER_TOKEN]],
      ]);
      const [method, path, body] = r.chance(0.5) ? change(r, k) : ['GET', read(r, k), undefined];
      return http('admin', method, path, body ? [...auth, JSON_TYPE] : auth, body, {
        expect: { status: 401, code: 'unauthorized' },
      });
    },
  },
];
