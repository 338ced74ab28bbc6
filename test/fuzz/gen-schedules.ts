import { http, JSON_TYPE, post, type Generator } from './generator.js';
import type { Rand } from './random.js';
import { ADMIN_TOKEN, USER_TOKEN } from './services.js';
import { badBody, CONTENT_TYPES, jsonValue, pct, segment } from './values.js';

/**
 * Cron schedules (`/schedules` on the admin API): creating, reading, pausing, resuming,
 * triggering and deleting are valid; a bad pattern, timezone, target, policy, jitter, name or
 * body, an unknown schedule or action, a wrong method, the user token changing anything, must
 * be refused with its 4xx and change nothing.
 *
 * Valid schedules only use patterns that fire on 29 February (next in 2028): a tick firing in
 * the middle of an invalid batch would be a change no request made.
 */
const AUTH: [string, string] = ['authorization', `Bearer ${ADMIN_TOKEN}`];
const USER_AUTH: [string, string] = ['authorization', `Bearer ${USER_TOKEN}`];
const NAMES = ['fz-s1', 'fz-s2', 'fz-s3', 'fz-s4'];
const CRONS = ['0 0 29 2 *', '30 4 29 2 *', '15 30 6 29 2 *', '@yearly 29 2'];
const TARGETS = [
  { target: { service: 'Greeter', handler: 'greet' }, input: 'Ada' },
  { target: { service: 'Greeter', handler: 'greet' } },
  { target: { service: 'Counter', handler: 'add', key: 'fz' }, input: 1 },
];

/** A valid schedule (an accepted pattern only: `@yearly 29 2` is not one, so it is left out). */
function validSchedule(r: Rand): Record<string, unknown> {
  return {
    name: r.pick(NAMES),
    cron: r.pick(CRONS.slice(0, 3)),
    ...r.pick(TARGETS),
    ...(r.chance(0.3) ? { timezone: r.pick(['Europe/Berlin', 'America/New_York', 'UTC']) } : {}),
    ...(r.chance(0.3)
      ? { missed: r.pick<unknown>(['skip', 'once', { all: r.int(1, 1000) }]) }
      : {}),
    ...(r.chance(0.2) ? { jitter: r.pick<unknown>(['10s', 500, '1h']) } : {}),
    ...(r.chance(0.2) ? { paused: r.chance(0.5) } : {}),
  };
}

/** A schedule the admin API must refuse (each a different rule). */
function invalidSchedule(r: Rand): unknown {
  const s = validSchedule(r);
  r.pick<() => void>([
    () =>
      (s.cron = r.pick<unknown>([
        '',
        'every hour',
        '61 * * * *',
        '* * * * * * *',
        '0 0 31 2 *',
        '*/0 * * * *',
        '@sometimes',
        CRONS[3],
        42,
        null,
      ])),
    () => (s.timezone = r.pick<unknown>(['Mars/Olympus', '', 'utc+2', 7, segment(r)])),
    () => (s.target = { service: r.pick(['Nope', segment(r)]), handler: 'greet' }),
    () => (s.target = { service: 'Greeter', handler: r.pick(['nope', '', 'constructor']) }),
    () => (s.target = { service: 'Counter', handler: 'add' }), // no key
    () => (s.target = { service: 'Greeter', handler: 'greet', key: 'k' }), // a service takes none
    () => (s.target = r.pick<unknown>([null, 'Greeter/greet', [], { service: 'Greeter' }])),
    () =>
      Object.assign(s, { target: { service: 'Counter', handler: 'add', key: 'fz' }, input: 'x' }),
    () => (s.missed = r.pick<unknown>(['always', { all: 0 }, { all: 1001 }, { all: 1.5 }, 3])),
    () => (s.jitter = r.pick<unknown>(['2h', 'soon', -1, 1.5, {}])),
    () => (s.name = r.pick<unknown>(['', 'has space', '../x', 'x'.repeat(101), 5, '-lead'])),
    () => (s.paused = r.pick<unknown>(['yes', 1, null])),
    () => (s[r.pick(['every', 'tz', 'overlap'])] = 1),
    () => Object.assign(s, { input: jsonValue(r), cron: 'nope' }),
  ])();
  return s;
}

const path = (r: Rand): string => `/schedules/${pct(r.pick([...NAMES, segment(r)]))}`;

export const schedulesValid: Generator[] = [
  {
    name: 'schedules-create',
    valid: true,
    weight: 2,
    make: (r) => post('admin', '/schedules', validSchedule(r), [AUTH]),
  },
  {
    name: 'schedules-read',
    valid: true,
    weight: 2,
    make: (r) =>
      r.chance(0.5)
        ? http('admin', 'GET', '/schedules', [r.pick([AUTH, USER_AUTH])])
        : http('admin', 'GET', `/schedules/${r.pick(NAMES)}`, [r.pick([AUTH, USER_AUTH])]),
  },
  {
    name: 'schedules-act',
    valid: true,
    weight: 2,
    make: (r) =>
      r.chance(0.2)
        ? http('admin', 'DELETE', `/schedules/${r.pick(NAMES)}`, [AUTH])
        : post(
            'admin',
            `/schedules/${r.pick(NAMES)}/${r.pick(['pause', 'resume', 'trigger'])}`,
            undefined,
            [AUTH],
          ),
  },
];

export const schedulesInvalid: Generator[] = [
  {
    name: 'schedules-create-invalid',
    valid: false,
    weight: 3,
    make: (r) =>
      r.chance(0.8)
        ? post('admin', '/schedules', invalidSchedule(r), [AUTH])
        : http('admin', 'POST', '/schedules', [AUTH, JSON_TYPE], badBody(r, 256 * 1024)),
  },
  {
    name: 'schedules-refused',
    valid: false,
    weight: 2,
    make: (r) =>
      r.pick([
        // The read-only token changing anything.
        () => post('admin', '/schedules', validSchedule(r), [USER_AUTH]),
        () =>
          post('admin', `${path(r)}/${r.pick(['pause', 'resume', 'trigger'])}`, undefined, [
            USER_AUTH,
          ]),
        () => http('admin', 'DELETE', path(r), [USER_AUTH]),
        // Not JSON, a wrong method, an unknown action or schedule.
        () =>
          http(
            'admin',
            'POST',
            '/schedules',
            [AUTH, ['content-type', r.pick(CONTENT_TYPES.filter((t) => !/json/i.test(t)))]],
            JSON.stringify(validSchedule(r)),
          ),
        () => http('admin', r.pick(['PUT', 'PATCH', 'DELETE']), '/schedules', [AUTH]),
        () => http('admin', r.pick(['GET', 'PUT', 'DELETE']), `${path(r)}/pause`, [AUTH]),
        () => post('admin', `${path(r)}/${r.pick(['explode', 'run', ''])}`, undefined, [AUTH]),
        () => post('admin', `/schedules/${pct(`zz-${segment(r)}`)}/trigger`, undefined, [AUTH]),
        () => http('admin', 'GET', `/schedules/${segment(r)}/${segment(r)}/${segment(r)}`, [AUTH]),
      ])(),
  },
];
