import { ADMIN_TOKEN } from './services.js';
import { http, JSON_TYPE, someInvocation, type Generator } from './generator.js';
import type { Rand } from './random.js';
import { badBody, jsonValue, segment } from './values.js';

/** Requests to the admin API, with the token (valid and invalid) and without it (always 401). */

const AUTH: [string, string] = ['authorization', `Bearer ${ADMIN_TOKEN}`];
const ACTIONS = ['cancel', 'kill', 'purge', 'resume'];
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
    name: 'admin-other',
    valid: true,
    weight: 1,
    make: (r) => http('admin', 'GET', r.pick(['/health', '/webhooks']), [AUTH]),
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
