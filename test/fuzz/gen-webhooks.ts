import { createHmac } from 'node:crypto';
import type { FuzzCase } from './cases.js';
import { http, JSON_TYPE, type Generator } from './generator.js';
import type { Known } from './known.js';
import type { Rand } from './random.js';
import { SECRETS } from './services.js';
import { badBody, jsonValue, segment, unicodeText } from './values.js';

/** Requests to the inbound receivers: signed ones (valid) and every way a signature can be wrong. */

type Name = keyof typeof SECRETS;
const NAMES = Object.keys(SECRETS) as Name[];
const hex = (key: string, text: string, alg = 'sha256'): string =>
  createHmac(alg, key)
    .update(text)
    .digest(alg === 'sha1' ? 'base64' : 'hex');
const nowS = (): number => Math.floor(Date.now() / 1000);

interface Signed {
  path: string;
  headers: [string, string][];
  body: string;
}

/** A request signed as `name`'s provider does, with `secret` (the right one or not) at `ts`. */
function sign(
  name: Name,
  body: string,
  o: { secret: string; ts: number; id: string; host: string; type?: string },
): Signed {
  const { secret, ts, id } = o;
  switch (name) {
    case 'stripe':
      return {
        path: '/webhooks/stripe',
        body,
        headers: [JSON_TYPE, ['stripe-signature', `t=${ts},v1=${hex(secret, `${ts}.${body}`)}`]],
      };
    case 'github':
      return {
        path: '/webhooks/github',
        body,
        headers: [
          JSON_TYPE,
          ['x-hub-signature-256', `sha256=${hex(secret, body)}`],
          ['x-github-delivery', id],
          ['x-github-event', o.type ?? 'push'],
        ],
      };
    case 'slack':
      return {
        path: '/webhooks/slack',
        body,
        headers: [
          JSON_TYPE,
          ['x-slack-request-timestamp', String(ts)],
          ['x-slack-signature', `v0=${hex(secret, `v0:${ts}:${body}`)}`],
        ],
      };
    case 'peers': {
      const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
      const sig = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
      return {
        path: '/webhooks/peers',
        body,
        headers: [
          JSON_TYPE,
          ['webhook-id', id],
          ['webhook-timestamp', String(ts)],
          ['webhook-signature', `v1,${sig}`],
        ],
      };
    }
    case 'twilio': {
      const url = `http://${o.host}/webhooks/twilio`;
      const params = [...new URLSearchParams(body)].sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      const data = url + params.map(([k, v]) => k + v).join('');
      return {
        path: '/webhooks/twilio',
        body,
        headers: [
          ['content-type', 'application/x-www-form-urlencoded'],
          ['x-twilio-signature', hex(secret, data, 'sha1')],
          ['i-twilio-idempotency-token', id],
        ],
      };
    }
  }
}

function eventBody(r: Rand, name: Name, id: string, known: Known): { body: string; type?: string } {
  switch (name) {
    case 'stripe':
      return {
        body: JSON.stringify({
          id,
          object: 'event',
          type: 'charge.succeeded',
          data: { object: { id: 'ch_1' } },
        }),
      };
    case 'github':
      if (known.awakeables.length > 0 && r.chance(0.4))
        return {
          body: JSON.stringify({ awakeable: r.pick(known.awakeables), state: 'success' }),
          type: 'deployment_status',
        };
      return { body: JSON.stringify({ ref: 'refs/heads/main', n: r.int(0, 9) }) };
    case 'slack':
      return {
        body: JSON.stringify({
          type: 'event_callback',
          event_id: id,
          event: { type: 'app_mention', text: unicodeText(r, 5) },
        }),
      };
    case 'peers':
      return { body: JSON.stringify({ type: 'thing.happened', data: jsonValue(r, 2) }) };
    case 'twilio':
      return {
        body: new URLSearchParams({
          MessageSid: id,
          MessageStatus: 'delivered',
          To: '+15005550006',
        }).toString(),
      };
  }
}

function toCase(s: Signed): FuzzCase {
  return http('ingress', 'POST', s.path, s.headers, s.body);
}

const eventId = (r: Rand): string => `ev_${r.int(0, 5000)}`;

export const webhooksValid: Generator[] = [
  {
    name: 'webhook-signed',
    valid: true,
    weight: 4,
    make: (r, k) => {
      const name = r.pick(NAMES);
      const id = eventId(r);
      const { body, type } = eventBody(r, name, id, k);
      return toCase(
        sign(name, body, {
          secret: SECRETS[name],
          ts: nowS(),
          id,
          host: k.ingressHost,
          ...(type ? { type } : {}),
        }),
      );
    },
  },
];

export const webhooksInvalid: Generator[] = [
  {
    name: 'webhook-bad-signature',
    valid: false,
    weight: 5,
    make: (r, k) => {
      const name = r.pick(NAMES);
      const id = eventId(r);
      const { body, type } = eventBody(r, name, id, k);
      // GitHub and Twilio sign no timestamp: a stale one is no flaw there.
      const timed = name === 'stripe' || name === 'slack' || name === 'peers';
      // Stripe and Standard Webhooks accept a header listing several signatures (any one that
      // matches will do, for secret rotation): a second, wrong one added is no flaw there.
      const lists = name === 'stripe' || name === 'peers';
      const flaw = r.pick([
        'secret',
        'tamper',
        'strip',
        'garble',
        ...(lists ? [] : ['duplicate']),
        ...(timed ? ['stale', 'future'] : []),
      ]);
      const secret =
        flaw === 'secret'
          ? name === 'peers'
            ? 'whsec_d3Jvbmcgc2VjcmV0IGtleSBieXRlcw=='
            : `${SECRETS[name]}x`
          : SECRETS[name];
      const ts =
        flaw === 'stale'
          ? nowS() - r.int(301, 10 ** 7)
          : flaw === 'future'
            ? nowS() + r.int(301, 10 ** 9)
            : nowS();
      const s = sign(name, body, {
        secret,
        ts,
        id,
        host: k.ingressHost,
        ...(type ? { type } : {}),
      });
      if (flaw === 'tamper') s.body = `${s.body} `;
      const signatureHeaders = new Set([
        'stripe-signature',
        'x-hub-signature-256',
        'x-slack-signature',
        'webhook-signature',
        'x-twilio-signature',
        'x-slack-request-timestamp',
        'webhook-timestamp',
      ]);
      if (flaw === 'strip') {
        const kept = s.headers.filter(([h]) => !signatureHeaders.has(h) || r.chance(0.3));
        // At least one signature header goes (GitHub and Twilio send only one): a request that
        // kept them all would be valid, not a flawed one.
        s.headers =
          kept.length < s.headers.length
            ? kept
            : s.headers.filter(([h]) => !signatureHeaders.has(h));
      }
      if (flaw === 'garble')
        s.headers = s.headers.map(([h, v]) => [
          h,
          signatureHeaders.has(h)
            ? r.pick([
                '',
                'v1=',
                't=,v1=',
                'sha256=zz',
                'v1,',
                unicodeText(r, 6).replace(/[\r\n\0]/g, ''),
                segment(r).slice(0, 200),
              ])
            : v,
        ]);
      if (flaw === 'duplicate') {
        const sigHeader = s.headers.find(([h]) => signatureHeaders.has(h));
        if (sigHeader) s.headers.push([sigHeader[0], 'v1=00']);
      }
      // Every flaw is a failed verification: 401 `invalid_signature`, whatever the provider.
      return http('ingress', 'POST', s.path, s.headers, s.body, {
        expect: { status: 401, code: 'invalid_signature' },
      });
    },
  },
  {
    name: 'webhook-bad-request',
    valid: false,
    weight: 2,
    make: (r, k) => {
      const name = r.pick(NAMES);
      return r.pick([
        () => http('ingress', r.pick(['GET', 'PUT', 'DELETE']), `/webhooks/${name}`),
        () => http('ingress', 'POST', `/webhooks/${segment(r)}`, [JSON_TYPE], '{}'),
        () => http('ingress', 'POST', `/webhooks/${name}/${segment(r)}`, [JSON_TYPE], '{}'),
        () => http('ingress', 'POST', '/webhooks', [JSON_TYPE], '{}'),
        () => http('ingress', 'POST', `/webhooks/${name}`, [JSON_TYPE], badBody(r, 1024 * 1024)),
        () =>
          http(
            'ingress',
            'POST',
            '/webhooks/slack',
            [JSON_TYPE],
            JSON.stringify({ type: 'url_verification', challenge: 'x' }),
          ),
        // A signed body that is not JSON: verified, then refused (400), nothing started.
        () =>
          toCase(
            sign(name === 'twilio' ? 'stripe' : name, '{not json', {
              secret: SECRETS[name === 'twilio' ? 'stripe' : name],
              ts: nowS(),
              id: eventId(r),
              host: k.ingressHost,
            }),
          ),
      ])();
    },
  },
];
