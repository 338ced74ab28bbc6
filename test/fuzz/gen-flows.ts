import { http, JSON_TYPE, post, type Generator } from './generator.js';
import { FUZZ_FLOW } from './flows.js';
import type { Rand } from './random.js';
import { ADMIN_TOKEN, USER_TOKEN } from './services.js';
import { badBody, CONTENT_TYPES, jsonValue, pct, segment } from './values.js';

/**
 * Declarative flows (`/flows/...`, see flows.ts): running the fuzz flow with any JSON input, and
 * registering a valid definition, are valid; a malformed, invalid or mistyped definition, an
 * unknown flow, a bad body or Idempotency-Key, a wrong method, the user token registering, must
 * be refused with its 4xx and change nothing (no version, no run).
 */
const AUTH: [string, string] = ['authorization', `Bearer ${ADMIN_TOKEN}`];
const USER_AUTH: [string, string] = ['authorization', `Bearer ${USER_TOKEN}`];
const YAML_TYPE: [string, string] = ['content-type', 'application/yaml'];
const NAMES = ['fuzz-a', 'fuzz-b', 'fuzz-c'];

/** A valid definition: one to three transform steps reading the input and each other. */
function validDefinition(r: Rand): object {
  const steps = Array.from({ length: r.int(1, 3) }, (_, i) => ({
    id: `s${i}`,
    type: 'transform',
    expression: r.pick([
      'input',
      'len(string(input)) + 1',
      `"v${r.int(0, 9)}"`,
      i > 0 ? `steps.s${i - 1}` : '1',
    ]),
    ...(r.chance(0.5) ? { storeAs: `v${i}` } : {}),
  }));
  return { name: r.pick(NAMES), steps };
}

/** A definition validation refuses (each a different rule). */
function invalidDefinition(r: Rand): unknown {
  const base = validDefinition(r) as { name: string; steps: Array<Record<string, unknown>> };
  const s0 = base.steps[0]!;
  r.pick<() => void>([
    () => (s0.type = r.pick(['graphql', 'API', '', 42, null])),
    () => (s0.expression = r.pick(['1 +', '((', 'a.b(', '"open', '{{', 'x = 1'])),
    () => (s0.expression = 'never_stored + 1'),
    () => base.steps.push({ ...s0 }),
    () => Object.assign(s0, { type: 'api', integration: 'NoSuchApi', operation: 'x' }),
    () => Object.assign(s0, { type: 'transform', expression: undefined, function: 'nope' }),
    () => (s0.onError = r.pick(['ignore', 'RETRY', 1, true])),
    () => Object.assign(s0, { retries: r.int(1, 5) }),
    () => Object.assign(s0, { onError: 'retry', retries: r.pick([-1, 1.5, 101, '3']) }),
    () => (s0[r.pick(['bogus', 'then', 'query'])] = 1),
    () => (base.name = r.pick(['', '1abc', 'a b', 'x'.repeat(101), '../etc'])),
    () => (base.steps = []),
    () =>
      Object.assign(s0, {
        type: 'conditional',
        condition: 'input',
        then: [{ ...s0, type: 'transform' }],
      }),
    () => Object.assign(s0, { timeout: r.pick(['soon', -5, '']) }),
  ])();
  return base;
}

/** A bad body that is really bad: some of `badBody`'s are valid JSON, hence a valid input here. */
function notJson(r: Rand, limit: number): Buffer {
  for (;;) {
    const body = badBody(r, limit);
    if (body.length > limit) return body;
    try {
      JSON.parse(body.toString('utf8'));
    } catch {
      return body;
    }
  }
}

export const flowsValid: Generator[] = [
  {
    name: 'flows-run',
    valid: true,
    weight: 3,
    make: (r) =>
      post(
        'ingress',
        `/flows/${FUZZ_FLOW}/run`,
        jsonValue(r),
        r.chance(0.3) ? [['idempotency-key', `fz-${r.int(0, 50)}`]] : [],
      ),
  },
  {
    name: 'flows-register',
    valid: true,
    weight: 1,
    make: (r) =>
      r.chance(0.5)
        ? post('admin', '/flows/definitions', validDefinition(r), [AUTH])
        : http(
            'admin',
            'POST',
            '/flows/definitions',
            [AUTH, YAML_TYPE],
            JSON.stringify(validDefinition(r)),
          ),
  },
  {
    name: 'flows-read',
    valid: true,
    weight: 1,
    make: (r) =>
      r.pick([
        () => http('admin', 'GET', '/flows/definitions', [r.pick([AUTH, USER_AUTH])]),
        () =>
          http('admin', 'GET', `/flows/definitions/${r.pick([...NAMES, FUZZ_FLOW, segment(r)])}`, [
            AUTH,
          ]),
        () =>
          http(
            'admin',
            'GET',
            `/flows/definitions/${FUZZ_FLOW}/versions/${r.pick(['1', '2', '0', 'x', '-1'])}`,
            [AUTH],
          ),
        () => http('ingress', 'GET', `/flows/runs/${pct(`${FUZZ_FLOW}:idem:fz-${r.int(0, 50)}`)}`),
      ])(),
  },
];

export const flowsInvalid: Generator[] = [
  {
    name: 'flows-register-invalid',
    valid: false,
    weight: 3,
    make: (r) =>
      r.chance(0.7)
        ? post('admin', '/flows/definitions', invalidDefinition(r), [AUTH])
        : http(
            'admin',
            'POST',
            '/flows/definitions',
            [AUTH, r.pick([JSON_TYPE, YAML_TYPE])],
            notJson(r, 256 * 1024),
          ),
  },
  {
    name: 'flows-register-refused',
    valid: false,
    weight: 1,
    make: (r) =>
      r.pick([
        // The read-only token, a content type that is neither JSON nor YAML, a wrong method.
        () => post('admin', '/flows/definitions', validDefinition(r), [USER_AUTH]),
        () =>
          http(
            'admin',
            'POST',
            '/flows/definitions',
            [AUTH, ['content-type', r.pick(CONTENT_TYPES.filter((t) => !/json|yaml/i.test(t)))]],
            JSON.stringify(validDefinition(r)),
          ),
        () => http('admin', r.pick(['PUT', 'DELETE', 'PATCH']), '/flows/definitions', [AUTH]),
        () => http('admin', 'POST', `/flows/definitions/${r.pick(NAMES)}`, [AUTH, JSON_TYPE], '{}'),
      ])(),
  },
  {
    name: 'flows-run-invalid',
    valid: false,
    weight: 2,
    make: (r) =>
      r.pick([
        () =>
          post(
            'ingress',
            `/flows/${pct(r.pick(['nope', 'fuzz-zzz', segment(r)]))}/run`,
            jsonValue(r),
          ),
        () =>
          http('ingress', 'POST', `/flows/${FUZZ_FLOW}/run`, [JSON_TYPE], notJson(r, 1024 * 1024)),
        () => http('ingress', r.pick(['GET', 'PUT', 'DELETE']), `/flows/${FUZZ_FLOW}/run`),
        () =>
          post(
            'ingress',
            `/flows/${FUZZ_FLOW}/run`,
            jsonValue(r),
            r.pick<[string, string][]>([
              [['idempotency-key', '']],
              [['idempotency-key', 'k'.repeat(257)]],
              [
                ['idempotency-key', 'a'],
                ['idempotency-key', 'b'],
              ],
            ]),
          ),
        () => http('ingress', 'POST', `/flows/${FUZZ_FLOW}/run?id=&id=`, [JSON_TYPE], '{}'),
        () => http('ingress', 'GET', `/flows/${segment(r)}/${segment(r)}/${segment(r)}`),
      ])(),
  },
];
