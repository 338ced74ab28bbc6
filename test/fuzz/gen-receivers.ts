import { createHmac, createPrivateKey, generateKeyPairSync, sign as ecSign } from 'node:crypto';
import type { FuzzCase } from './cases.js';
import { http, JSON_TYPE, type Generator } from './generator.js';
import type { Rand } from './random.js';
import { EXAMPLE_SECRETS } from './services.js';

/**
 * Requests to the examples' own receivers (services.ts `exampleReceivers`): signed as each
 * provider signs (valid: they reach the examples' handlers), and every way they can be wrong
 * (tampered, unsigned, stale, signed with the wrong secret or key, the wrong URL token), each of
 * which must answer 401 `invalid_signature` and change nothing.
 */

type Name =
  | 'agg-stripe'
  | 'shippo'
  | 'shippo-token'
  | 'sendgrid'
  | 'deploy-github'
  | 'fulfillment-warehouse'
  | 'fulfillment-carrier';
const NAMES: Name[] = [
  'agg-stripe',
  'shippo',
  'shippo-token',
  'sendgrid',
  'deploy-github',
  'fulfillment-warehouse',
  'fulfillment-carrier',
];

const SENDGRID_KEY = createPrivateKey({
  key: Buffer.from(EXAMPLE_SECRETS.sendgridPrivateKey, 'base64'),
  format: 'der',
  type: 'pkcs8',
});
/** A P-256 key the receiver does not know: its signatures are well-formed and wrong. */
const OTHER_SENDGRID_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

const nowS = (): number => Math.floor(Date.now() / 1000);
const hmacHex = (key: string | Buffer, text: string): string =>
  createHmac('sha256', key).update(text).digest('hex');

/** How a request is made wrong; each applies to the receivers whose scheme it breaks. */
type Flaw = 'secret' | 'tamper' | 'unsigned' | 'stale' | 'future' | 'token' | 'no-token';

interface Signing {
  ts: number;
  /** Sign with the wrong secret (or key). */
  wrongSecret: boolean;
  /** The URL token: right, wrong, or none. */
  token: 'right' | 'wrong' | 'none';
  /** Shippo's HMAC form: with a timestamp (`Shippo-Auth-Signature`) or over the body alone. */
  shippoForm: 'auth' | 'body';
}

interface Signed {
  path: string;
  headers: [string, string][];
  body: string;
}

function body(r: Rand, name: Name): string {
  const n = r.int(0, 5000);
  const order = `order-${r.int(0, 20)}`;
  switch (name) {
    case 'agg-stripe':
      return JSON.stringify({
        id: `evt_${n}`,
        object: 'event',
        type: r.pick(['charge.succeeded', 'charge.failed', 'charge.refunded', 'customer.created']),
        created: nowS() - r.int(0, 3600),
        data: { object: { id: `ch_${n}`, metadata: { order_id: order } } },
      });
    case 'shippo':
    case 'shippo-token':
      return JSON.stringify({
        event: r.pick(['track_updated', 'track_updated', 'transaction_created']),
        data: {
          tracking_number: `TRK${n}`,
          carrier: 'usps',
          metadata: r.chance(0.5) ? `order_id=${order}` : order,
          tracking_status: {
            status: r.pick(['UNKNOWN', 'PRE_TRANSIT', 'TRANSIT', 'DELIVERED', 'FAILURE']),
            status_date: new Date(Date.now() - r.int(0, 3_600_000)).toISOString(),
            object_id: `ts_${n}`,
          },
        },
      });
    case 'sendgrid':
      return JSON.stringify(
        Array.from({ length: r.int(1, 3) }, (_, i) => ({
          event: r.pick(['processed', 'delivered', 'open', 'bounce', 'deferred', 'click']),
          email: 'buyer@example.com',
          timestamp: nowS() - r.int(0, 3600),
          sg_event_id: `sg_${n}_${i}`,
          order_id: order,
        })),
      );
    case 'deploy-github':
      return JSON.stringify({
        deployment: { id: r.int(1, 30) },
        deployment_status: {
          state: r.pick(['pending', 'in_progress', 'success', 'failure', 'error']),
          description: 'fuzz',
        },
      });
    case 'fulfillment-warehouse':
      return JSON.stringify({
        type: r.pick(['pick_ticket.packed', 'pick_ticket.exception', 'pick_ticket.other']),
        timestamp: new Date().toISOString(),
        data: {
          pick_ticket_id: `PT-${order}`,
          packages: [{ weightGrams: r.int(1, 5000) }],
          reason: 'fuzz',
        },
      });
    case 'fulfillment-carrier':
      return JSON.stringify({
        type: r.pick(['pickup.completed', 'pickup.failed', 'pickup.other']),
        timestamp: new Date().toISOString(),
        data: { pickup_id: `PU-${order}`, reason: 'fuzz' },
      });
  }
}

function standardWebhook(secret: string, id: string, ts: number, text: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.${text}`).digest('base64')}`;
}

function sign(r: Rand, name: Name, text: string, s: Signing): Signed {
  const bad = (secret: string): string => (s.wrongSecret ? `${secret}x` : secret);
  const tokenQuery = (): string =>
    s.token === 'none'
      ? ''
      : `?token=${encodeURIComponent(s.token === 'right' ? EXAMPLE_SECRETS.shippoToken : r.pick([`${EXAMPLE_SECRETS.shippoToken}x`, EXAMPLE_SECRETS.shippoToken.slice(1), EXAMPLE_SECRETS.shippoToken.toUpperCase()]))}`;
  switch (name) {
    case 'agg-stripe': {
      const sig = hmacHex(bad(EXAMPLE_SECRETS.stripe), `${s.ts}.${text}`);
      return {
        path: '/webhooks/agg-stripe',
        body: text,
        headers: [JSON_TYPE, ['stripe-signature', `t=${s.ts},v1=${sig}`]],
      };
    }
    case 'shippo': {
      const secret = bad(EXAMPLE_SECRETS.shippoHmac);
      const header: [string, string] =
        s.shippoForm === 'auth'
          ? ['shippo-auth-signature', `t=${s.ts},v1=${hmacHex(secret, `${s.ts}.${text}`)}`]
          : ['x-shippo-signature', `${r.pick(['', 'sha256='])}${hmacHex(secret, text)}`];
      return { path: `/webhooks/shippo${tokenQuery()}`, body: text, headers: [JSON_TYPE, header] };
    }
    case 'shippo-token':
      return { path: `/webhooks/shippo-token${tokenQuery()}`, body: text, headers: [JSON_TYPE] };
    case 'sendgrid': {
      const key = s.wrongSecret ? OTHER_SENDGRID_KEY : SENDGRID_KEY;
      const sig = ecSign('sha256', Buffer.from(`${s.ts}${text}`), { key, dsaEncoding: 'der' });
      return {
        path: '/webhooks/sendgrid',
        body: text,
        headers: [
          JSON_TYPE,
          ['x-twilio-email-event-webhook-signature', sig.toString('base64')],
          ['x-twilio-email-event-webhook-timestamp', String(s.ts)],
        ],
      };
    }
    case 'deploy-github':
      return {
        path: '/webhooks/deploy-github',
        body: text,
        headers: [
          JSON_TYPE,
          ['x-hub-signature-256', `sha256=${hmacHex(bad(EXAMPLE_SECRETS.github), text)}`],
          ['x-github-event', 'deployment_status'],
          ['x-github-delivery', `d-${r.int(0, 5000)}`],
        ],
      };
    case 'fulfillment-warehouse':
    case 'fulfillment-carrier': {
      const secret =
        name === 'fulfillment-warehouse' ? EXAMPLE_SECRETS.warehouse : EXAMPLE_SECRETS.carrier;
      // A wrong Standard Webhooks secret must still be base64: the other receiver's is.
      const used =
        s.wrongSecret === false
          ? secret
          : name === 'fulfillment-warehouse'
            ? EXAMPLE_SECRETS.carrier
            : EXAMPLE_SECRETS.warehouse;
      const id = `msg_${r.int(0, 5000)}`;
      return {
        path: `/webhooks/${name}`,
        body: text,
        headers: [
          JSON_TYPE,
          ['webhook-id', id],
          ['webhook-timestamp', String(s.ts)],
          ['webhook-signature', standardWebhook(used, id, s.ts, text)],
        ],
      };
    }
  }
}

/** The headers that carry a signature or its timestamp: what `unsigned` removes. */
const SIGNATURE_HEADERS = new Set([
  'stripe-signature',
  'shippo-auth-signature',
  'x-shippo-signature',
  'x-twilio-email-event-webhook-signature',
  'x-twilio-email-event-webhook-timestamp',
  'x-hub-signature-256',
  'webhook-signature',
  'webhook-timestamp',
]);

/** The flaws that break `name`'s scheme (a stale timestamp is no flaw where none is signed). */
function flawsOf(name: Name, shippoForm: Signing['shippoForm']): Flaw[] {
  switch (name) {
    case 'shippo-token':
      // The token proves only that the sender knows the URL: the body is not protected.
      return ['token', 'no-token'];
    case 'shippo':
      return [
        'secret',
        'tamper',
        'unsigned',
        'token',
        'no-token',
        ...(shippoForm === 'auth' ? (['stale', 'future'] as const) : []),
      ];
    case 'deploy-github':
      return ['secret', 'tamper', 'unsigned'];
    default:
      return ['secret', 'tamper', 'unsigned', 'stale', 'future'];
  }
}

function toCase(s: Signed, invalid: boolean): FuzzCase {
  return http(
    'ingress',
    'POST',
    s.path,
    s.headers,
    s.body,
    invalid ? { expect: { status: 401, code: 'invalid_signature' } } : {},
  );
}

export const receiversValid: Generator[] = [
  {
    name: 'receiver-signed',
    valid: true,
    weight: 3,
    make: (r) => {
      const name = r.pick(NAMES);
      return toCase(
        sign(r, name, body(r, name), {
          ts: nowS(),
          wrongSecret: false,
          token: 'right',
          shippoForm: r.pick(['auth', 'body']),
        }),
        false,
      );
    },
  },
];

export const receiversInvalid: Generator[] = [
  {
    name: 'receiver-bad-signature',
    valid: false,
    weight: 4,
    make: (r) => {
      const name = r.pick(NAMES);
      const shippoForm = r.pick<Signing['shippoForm']>(['auth', 'body']);
      const flaw = r.pick(flawsOf(name, shippoForm));
      const ts =
        flaw === 'stale'
          ? nowS() - r.int(400, 10 ** 7)
          : flaw === 'future'
            ? nowS() + r.int(400, 10 ** 8)
            : nowS();
      const s = sign(r, name, body(r, name), {
        ts,
        wrongSecret: flaw === 'secret',
        token: flaw === 'token' ? 'wrong' : flaw === 'no-token' ? 'none' : 'right',
        shippoForm,
      });
      if (flaw === 'tamper') {
        // Another order, or a trailing space: the same JSON, other bytes.
        const other = s.body.replace(/order-(\d+)/, 'order-9$1');
        s.body = other !== s.body && r.chance(0.5) ? other : `${s.body} `;
      }
      if (flaw === 'unsigned') {
        const kept = s.headers.filter(([h]) => !SIGNATURE_HEADERS.has(h) || r.chance(0.3));
        // At least one goes: a request that kept them all would still be signed.
        s.headers =
          kept.length < s.headers.length
            ? kept
            : s.headers.filter(([h]) => !SIGNATURE_HEADERS.has(h));
      }
      return toCase(s, true);
    },
  },
];
