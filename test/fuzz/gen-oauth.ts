import { http, type Generator } from './generator.js';
import { OAUTH_PROVIDER } from './oauth.js';
import type { Rand } from './random.js';
import { ADMIN_TOKEN, USER_TOKEN } from './services.js';
import { pct, segment, unicodeText } from './values.js';

/**
 * The OAuth2 connect routes (ingress) and the accounts API (admin): a connect with a good account
 * name is valid (a 302 that stores a pending state); everything else — a bad or missing account,
 * a callback with a made-up, malformed or missing state, a provider error, another method, an
 * unknown provider — must be refused with a 4xx and change nothing.
 */
const P = `/oauth/${OAUTH_PROVIDER}`;
const AUTH: [string, string] = ['authorization', `Bearer ${ADMIN_TOKEN}`];
const USER_AUTH: [string, string] = ['authorization', `Bearer ${USER_TOKEN}`];

function goodAccount(r: Rand): string {
  return `user-${r.chars(r.int(1, 12), 'abcdefghijklmnopqrstuvwxyz0123456789')}`;
}

function badAccount(r: Rand): string | undefined {
  return r.pick<string | undefined>([
    undefined,
    '',
    'a'.repeat(r.int(129, 3000)),
    `user ${r.int(0, 9)}`,
    'a/b',
    '../x',
    '-leading',
    // Starts with a non-ASCII letter: never a valid name, whatever follows.
    `é${unicodeText(r, r.int(0, 8))}`,
    '%00',
    '<script>',
  ]);
}

function fakeState(r: Rand): string {
  return r.pick([
    r.chars(43, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
    '',
    'x'.repeat(r.int(500, 5000)),
    unicodeText(r, r.int(1, 10)),
    segment(r),
  ]);
}

export const oauthValid: Generator[] = [
  {
    name: 'oauth-connect',
    valid: true,
    weight: 2,
    make: (r) => http('ingress', 'GET', `${P}/connect?account=${goodAccount(r)}`),
  },
  {
    name: 'oauth-accounts',
    valid: true,
    weight: 1,
    make: (r) =>
      http('admin', 'GET', `/oauth/accounts${r.chance(0.3) ? `?provider=${OAUTH_PROVIDER}` : ''}`, [
        AUTH,
      ]),
  },
];

export const oauthInvalid: Generator[] = [
  {
    name: 'oauth-connect-bad-account',
    valid: false,
    weight: 2,
    make: (r) => {
      const a = badAccount(r);
      return http(
        'ingress',
        'GET',
        `${P}/connect${a === undefined ? '' : `?account=${pct(a)}`}`,
        [],
        undefined,
        {
          expect: { status: 400 },
        },
      );
    },
  },
  {
    name: 'oauth-callback-forged',
    valid: false,
    weight: 3,
    make: (r) => {
      const q: string[] = [];
      if (r.chance(0.9)) q.push(`state=${pct(fakeState(r))}`);
      if (r.chance(0.8)) q.push(`code=${pct(fakeState(r))}`);
      if (r.chance(0.2)) q.push(`error=${pct(r.pick(['access_denied', unicodeText(r, 4)]))}`);
      if (r.chance(0.1)) q.push(`state=${pct(fakeState(r))}`);
      return http(
        'ingress',
        'GET',
        `${P}/callback${q.length ? `?${q.join('&')}` : ''}`,
        [],
        undefined,
        {
          expect: { status: 400, code: 'oauth_state_invalid' },
        },
      );
    },
  },
  {
    name: 'oauth-wrong-route',
    valid: false,
    weight: 1,
    make: (r) => {
      const pick = r.int(0, 3);
      if (pick === 0)
        return http(
          'ingress',
          r.pick(['POST', 'PUT', 'DELETE']),
          `${P}/connect?account=user-1`,
          [],
          undefined,
          {
            expect: { status: 405 },
          },
        );
      if (pick === 1)
        return http(
          'ingress',
          'GET',
          `/oauth/${r.chars(r.int(1, 20), 'abcdefghijklmnopqrstuvwxyz')}/connect?account=user-1`,
          [],
          undefined,
          {
            expect: { status: 404 },
          },
        );
      if (pick === 2)
        return http(
          'ingress',
          'GET',
          `${P}/${r.pick(['authorize', 'token', 'connect/x', 'callback/x', ''])}`,
          [],
          undefined,
          {
            expect: { status: 404 },
          },
        );
      return http(
        'admin',
        'DELETE',
        `/oauth/accounts/${OAUTH_PROVIDER}/user-${r.int(0, 999)}`,
        [USER_AUTH],
        undefined,
        {
          expect: { status: 403, code: 'forbidden' },
        },
      );
    },
  },
];
