import { http, JSON_TYPE, post, someInvocation, type Generator } from './generator.js';
import type { Known } from './known.js';
import type { Rand } from './random.js';
import {
  badBody,
  CONTENT_TYPES,
  jsonValue,
  key,
  oddDelay,
  pct,
  segment,
  unicodeText,
} from './values.js';

/** Requests to the ingress: invocations, sends, awakeables, invocation reads. */

const BODY_LIMIT = 1024 * 1024;
const CUSTOMERS = [
  'cust-123',
  'cust-456',
  'cust-fail-payment',
  'cust-fail-email',
  'cust-fail-shipment',
];
const waiterKey = (r: Rand): string => `w${r.int(0, 30)}`;

/** A target that takes input, for bodies and headers that must be refused whatever the handler. */
function target(r: Rand): string {
  return r.pick([
    '/Greeter/greet',
    `/Counter/${key(r)}/add`,
    `/OrderWorkflow/ow-${r.int(0, 50)}/run`,
    `/Counter/${key(r)}/add/send`,
  ]);
}

function validOrder(r: Rand, orderId: string): unknown {
  return {
    orderId,
    customerId: r.pick(CUSTOMERS),
    items: [
      { sku: r.pick(['ITEM-001', 'ITEM-002', 'ITEM-003', 'ITEM-SOLD-OUT']), quantity: r.int(1, 3) },
    ],
    amount: r.int(1, 500),
  };
}

const send = (r: Rand): string => (r.chance(0.5) ? '/send' : '');

/** Debounce and throttle periods that are not usable (none is a duration a trim would save). */
const BAD_PERIODS = [
  'abc',
  '-1s',
  '1x',
  '',
  'Infinity',
  'NaN',
  '0ms',
  '9'.repeat(400),
  'P',
  'PT',
  '0x10',
  '400d',
  '1.5.5s',
];

export const ingressValid: Generator[] = [
  {
    name: 'greet',
    valid: true,
    weight: 3,
    make: (r) => post('ingress', '/Greeter/greet', unicodeText(r, r.int(0, 12))),
  },
  {
    name: 'counter-add',
    valid: true,
    weight: 5,
    make: (r) => {
      const s = send(r);
      const delay = s && r.chance(0.3) ? r.pick(['100ms', '1s', '1h', 'PT2H']) : undefined;
      // A call with the idempotency key of an earlier send joins that invocation and answers
      // its result (README, "The HTTP ingress"): for a send delayed by hours, hours later. Such
      // a call is no hang, but it would hold a worker past the fuzzer's answer limit, so the
      // keys of long-delayed sends are their own (their duplicates are still sent).
      const later = delay === '1h' || delay === 'PT2H' ? 'later-' : '';
      const idem: [string, string][] = r.chance(0.3)
        ? [['idempotency-key', `idem-${later}${r.int(0, 40)}`]]
        : [];
      const query = delay === undefined ? '' : `?delay=${delay}`;
      return post('ingress', `/Counter/${key(r)}/add${s}${query}`, r.int(-5, 100), idem);
    },
  },
  {
    // Debounced and throttled sends (docs/flow-control.md): a few keys, so bursts join and
    // throttles fill; a dropped send answers 200 { dropped: true }, not an error.
    name: 'counter-add-flow',
    valid: true,
    weight: 2,
    make: (r) => {
      const query = r.chance(0.5)
        ? `?debounceKey=d${r.int(0, 3)}&debouncePeriod=${r.pick(['100ms', '1s', 'PT2S'])}` +
          (r.chance(0.3) ? `&debounceMaxWait=${r.pick(['2s', '5s'])}` : '')
        : `?throttleKey=t${r.int(0, 3)}&throttleLimit=${r.int(1, 5)}` +
          `&throttlePeriod=${r.pick(['100ms', '1s'])}` +
          (r.chance(0.5) ? `&throttleMode=${r.pick(['delay', 'drop'])}` : '');
      return post('ingress', `/Counter/${key(r)}/add/send${query}`, r.int(-5, 100));
    },
  },
  {
    // Seed 004's event-sourced BankAccount and its projector: commands, replay queries and
    // projection handlers, with inputs right and wrong (a refusal is a 4xx, never a 5xx).
    name: 'bank-account',
    valid: true,
    weight: 3,
    make: (r) => {
      const k = r.chance(0.85) ? `acc-${r.int(0, 8)}` : key(r);
      const amount = r.pick([r.int(1, 500), r.int(-5, 0), 1e300, 0.5, '10', undefined]);
      const [path, body]: [string, unknown] = r.pick<[string, unknown]>([
        [`/BankAccount/${k}/open`, r.chance(0.8) ? { owner: `o${r.int(0, 3)}` } : jsonValue(r)],
        [`/BankAccount/${k}/deposit`, { amount, reference: `r${r.int(0, 9)}` }],
        [
          `/BankAccount/${k}/withdraw`,
          { amount, expectedVersion: r.pick([undefined, r.int(-1, 12), 'x']) },
        ],
        [`/BankAccount/${k}/close`, undefined],
        [`/BankAccount/${k}/state`, undefined],
        [
          `/BankAccount/${k}/stateAt`,
          r.pick([
            { seq: r.int(-1, 12) },
            { time: r.pick([0, 'x', 1e300, '2030-01-01']) },
            jsonValue(r),
          ]),
        ],
        [
          `/BankAccount/${k}/events`,
          r.pick([{ from: r.int(0, 12), limit: r.int(0, 1001) }, jsonValue(r)]),
        ],
        [
          `/BankAccountProjections/${r.pick(['balances', 'summary', 'nope'])}/${r.pick(['view', 'views', 'cursors', 'catchUp', 'rebuild'])}`,
          r.pick([undefined, k, jsonValue(r)]),
        ],
        [`/BankAccountProjections/summary/deliver`, r.pick([{ aggregate: k }, jsonValue(r)])],
      ]);
      return post('ingress', path, body);
    },
  },
  {
    name: 'counter-get',
    valid: true,
    weight: 2,
    make: (r) => post('ingress', `/Counter/${key(r)}/${r.pick(['get', 'reset'])}`),
  },
  {
    name: 'order-workflow',
    valid: true,
    // Its run sleeps 2 s, which the store must wait out before each invalid batch.
    weight: 1,
    make: (r) => {
      const k = `ow-${r.int(0, 50)}`;
      return r.chance(0.5)
        ? post('ingress', `/OrderWorkflow/${k}/run/send`, { item: 'book', quantity: r.int(1, 4) })
        : post('ingress', `/OrderWorkflow/${k}/status`);
    },
  },
  {
    name: 'order-saga',
    valid: true,
    weight: 2,
    make: (r) => {
      const id = `order-${r.int(0, 300)}`;
      return r.chance(0.7)
        ? post('ingress', `/OrderSaga/${id}/Run${send(r)}`, validOrder(r, id))
        : post('ingress', `/OrderSaga/${id}/status`);
    },
  },
  {
    name: 'waiter-start',
    valid: true,
    weight: 2,
    make: (r) => post('ingress', `/Waiter/${waiterKey(r)}/run/send`),
  },
  {
    name: 'waiter-awakeable',
    valid: true,
    weight: 3,
    make: (r) => post('ingress', `/Waiter/${waiterKey(r)}/awakeable`),
  },
  {
    name: 'waiter-finish',
    valid: true,
    weight: 1,
    make: (r) => post('ingress', `/Waiter/${waiterKey(r)}/finish/send`, jsonValue(r)),
  },
  {
    name: 'awakeable-complete',
    valid: true,
    weight: 3,
    make: (r, k) => {
      if (k.awakeables.length === 0) return post('ingress', `/Waiter/${waiterKey(r)}/awakeable`);
      const id = encodeURIComponent(r.pick(k.awakeables));
      return r.chance(0.6)
        ? post('ingress', `/awakeables/${id}/resolve`, jsonValue(r))
        : post('ingress', `/awakeables/${id}/reject`, { message: unicodeText(r, 8) });
    },
  },
  {
    name: 'invocation-read',
    valid: true,
    weight: 4,
    make: (r, k) => {
      const id = someInvocation(r, k);
      const action = r.pick(['', '/output', '/attach']);
      return http(
        'ingress',
        'GET',
        `/invocations/${id}${action}`,
        [],
        undefined,
        action === '/attach' ? { abortAfterMs: r.int(5, 300) } : {},
      );
    },
  },
  { name: 'health', valid: true, weight: 1, make: () => http('ingress', 'GET', '/health') },
];

const ODD_METHODS = [
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'HEAD',
  'TRACE',
  'PROPFIND',
  'M-SEARCH',
  'GETT',
  'post',
  'Get',
  'X',
];

function guessedAwakeable(r: Rand, k: Known): string {
  const inv = someInvocation(r, k).slice(4);
  return r.pick([
    `awk_${inv}_${r.int(0, 5)}`,
    `awk_${inv}_${r.chars(12, '0123456789')}`,
    `awk_${r.chars(26, 'abcdefghjkmnpqrstvwxyz0123')}_1`,
    `awk_${segment(r)}`,
    segment(r),
    k.awakeables.length > 0 ? `${r.pick(k.awakeables)}x` : 'awk_',
    k.awakeables.length > 0 ? pct(r.pick(k.awakeables).toUpperCase()) : 'AWK_1',
  ]);
}

export const ingressInvalid: Generator[] = [
  {
    name: 'unknown-path',
    valid: false,
    weight: 4,
    make: (r) => {
      const segs = Array.from({ length: r.int(1, 6) }, () => segment(r));
      if (r.chance(0.3))
        segs[0] = r.pick([
          'Greeter',
          'Counter',
          'OrderSaga',
          'Waiter',
          'invocations',
          'awakeables',
          'health',
          'webhooks',
        ]);
      return http(
        'ingress',
        r.pick(['GET', 'POST', 'POST', 'DELETE']),
        `/${segs.join('/')}${r.chance(0.2) ? '/' : ''}`,
      );
    },
  },
  {
    name: 'odd-method',
    valid: false,
    weight: 2,
    make: (r, k) =>
      http(
        'ingress',
        r.pick(ODD_METHODS),
        r.pick([
          target(r),
          '/health',
          `/invocations/${someInvocation(r, k)}`,
          `/awakeables/${guessedAwakeable(r, k)}/resolve`,
        ]),
        [JSON_TYPE],
        r.chance(0.5) ? '1' : undefined,
      ),
  },
  {
    name: 'bad-body',
    valid: false,
    weight: 5,
    make: (r) => http('ingress', 'POST', target(r), [JSON_TYPE], badBody(r, BODY_LIMIT)),
  },
  {
    name: 'wrong-input',
    valid: false,
    weight: 3,
    make: (r) => {
      const wrong = r.pick<unknown>([
        {},
        [],
        null,
        'x',
        { orderId: 1 },
        { items: 'all' },
        jsonValue(r),
      ]);
      return r.chance(0.5)
        ? post(
            'ingress',
            `/Counter/${key(r)}/add${send(r)}`,
            r.pick<unknown>(['5', null, {}, [1], true, 'NaN']),
          )
        : post('ingress', `/OrderSaga/order-${r.int(0, 300)}/Run${send(r)}`, wrong);
    },
  },
  {
    name: 'bad-content-type',
    valid: false,
    weight: 3,
    make: (r) => {
      const headers: [string, string][] = r.chance(0.85)
        ? [['content-type', r.pick(CONTENT_TYPES)]]
        : [];
      return http('ingress', 'POST', target(r), headers, r.chance(0.5) ? '5' : '"x"');
    },
  },
  {
    name: 'bad-delay',
    valid: false,
    weight: 3,
    make: (r) => {
      const q = r.pick([
        () => `?delay=${encodeURIComponent(oddDelay(r))}`,
        () => `?delay=${oddDelay(r)}`,
        () => `?delay=1s&delay=${oddDelay(r)}`,
      ])();
      // A delay is only for sends; on a call it is refused too.
      return post('ingress', `/Counter/${key(r)}/add${r.chance(0.8) ? '/send' : ''}${q}`, 1);
    },
  },
  {
    // Debounce and throttle parameters that cannot be used: 400, nothing stored or counted.
    name: 'bad-flow-control',
    valid: false,
    weight: 2,
    make: (r) => {
      const q = r.pick([
        () => `?debounceKey=&debouncePeriod=1s`,
        () => `?debounceKey=k${r.int(0, 3)}`,
        () => `?debounceKey=k&debouncePeriod=${encodeURIComponent(r.pick(BAD_PERIODS))}`,
        () => `?debounceKey=k&debouncePeriod=0`,
        () => `?debounceKey=k&debouncePeriod=10s&debounceMaxWait=1s`,
        () => `?debounceKey=a&debounceKey=b&debouncePeriod=1s`,
        () => `?debounceKey=k&debouncePeriod=1s&delay=1s`,
        () => `?debounceKey=${'x'.repeat(257)}&debouncePeriod=1s`,
        () =>
          `?throttleKey=k&throttleLimit=${r.pick(['0', '-1', '1.5', '1e3', 'x', '', '1001'])}&throttlePeriod=1s`,
        () =>
          `?throttleKey=k&throttleLimit=1&throttlePeriod=${encodeURIComponent(r.pick(BAD_PERIODS))}`,
        () =>
          `?throttleKey=k&throttleLimit=1&throttlePeriod=1s&throttleMode=${r.pick(['', 'queue', 'DROP'])}`,
        () => `?throttleLimit=1&throttlePeriod=1s`,
        () => `?debounceKey=k&debouncePeriod=1s&throttleKey=k&throttleLimit=1&throttlePeriod=1s`,
      ])();
      // Only for sends; on a call they are refused too. An idempotency key with a debounce is.
      const headers: [string, string][] =
        q.startsWith('?debounceKey=k&debouncePeriod=1s') && r.chance(0.2)
          ? [['idempotency-key', `flow-${r.int(0, 9)}`]]
          : [];
      return post(
        'ingress',
        `/Counter/${key(r)}/add${r.chance(0.85) ? '/send' : ''}${q}`,
        1,
        headers,
      );
    },
  },
  {
    name: 'bad-idempotency-key',
    valid: false,
    weight: 2,
    make: (r) => {
      const headers: [string, string][] = r.pick([
        () => [['idempotency-key', '']] as [string, string][],
        () => [['idempotency-key', '   ']] as [string, string][],
        () =>
          [
            ['idempotency-key', `a${r.int(0, 9)}`],
            ['idempotency-key', `b${r.int(0, 9)}`],
          ] as [string, string][],
      ])();
      return post('ingress', `/Counter/${key(r)}/add${send(r)}`, 1, headers);
    },
  },
  {
    name: 'unknown-invocation',
    valid: false,
    weight: 3,
    make: (r, k) => {
      const id = r.pick([
        () => segment(r),
        () => `inv_${r.chars(26, '0123456789abcdefghjkmnpqrstvwxyz')}`,
        () => `inv_${r.chars(r.int(0, 40), 'ABCXYZ0123456789_-')}`,
        () => `${someInvocation(r, k)}x`,
      ])();
      const action = r.pick(['', '/attach', '/output', '/journal', '/cancel', `/${segment(r)}`]);
      return http(
        'ingress',
        r.pick(['GET', 'GET', 'POST']),
        `/invocations/${id}${action}`,
        [],
        undefined,
        { abortAfterMs: 2_000 },
      );
    },
  },
  {
    name: 'unknown-awakeable',
    valid: false,
    weight: 3,
    make: (r, k) =>
      post(
        'ingress',
        `/awakeables/${guessedAwakeable(r, k)}/${r.pick(['resolve', 'reject'])}`,
        r.chance(0.5) ? { message: 'no' } : jsonValue(r),
      ),
  },
  {
    name: 'reject-without-message',
    valid: false,
    weight: 1,
    make: (r, k) => {
      const id =
        k.awakeables.length > 0 ? encodeURIComponent(r.pick(k.awakeables)) : guessedAwakeable(r, k);
      return post(
        'ingress',
        `/awakeables/${id}/reject`,
        r.pick<unknown>([{}, { message: 5 }, 'no', [], undefined]),
      );
    },
  },
  {
    name: 'missing-key',
    valid: false,
    weight: 2,
    make: (r) =>
      post(
        'ingress',
        r.pick([
          '/Counter//add',
          '/Counter/add',
          '/Greeter/k/greet',
          '/OrderWorkflow/run',
          '/Waiter//run/send',
          '/Counter/k/nope',
          '/Greeter/greet/send/x',
          '/OrderSaga/o/Run/send/send',
        ]),
        1,
      ),
  },
];
