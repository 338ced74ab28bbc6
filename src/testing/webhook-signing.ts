/**
 * Signs an inbound webhook request the way its provider would, for a receiver's configured
 * secret: what `t.webhooks.deliver` sends. Each scheme here mirrors the verifier of the same
 * provider in `src/webhooks/verify/` (the receiver checks the result with that verifier).
 */
import {
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  randomUUID,
  sign as signBytes,
  type KeyObject,
} from 'node:crypto';
import type { ReceiverOptions } from '../webhooks/inbound/types.js';
import { signedHeaders } from '../webhooks/standard.js';
import { TestAppError } from './errors.js';

/** How the request is signed: with the receiver's secret, a wrong one, or not at all. */
export type SignatureMode = 'valid' | 'bad' | 'none';

/** What {@link signInbound} needs. */
export interface SignRequest {
  receiver: ReceiverOptions;
  /** The receiver's name (used in messages). */
  name: string;
  /** The full URL the receiver will see as its public URL (Twilio signs it, Shippo's token is in it). */
  url: URL;
  body: string;
  /** When it is signed: epoch ms (the fake clock's now). */
  at: number;
  /** The provider's delivery id where a header carries it. */
  id: string;
  /** GitHub's `X-GitHub-Event`. */
  event: string | undefined;
  mode: SignatureMode;
  /** SendGrid: the private key matching the receiver's public verification key. */
  privateKey?: string | KeyObject | undefined;
}

/** Headers to send (and the URL, with Shippo's token added). */
export interface SignedRequest {
  url: URL;
  headers: Record<string, string>;
}

/** A valid Standard Webhooks secret that is not the receiver's (for `mode: 'bad'`). */
const WRONG_STANDARD_SECRET = `whsec_${Buffer.from('keel-testing: not the receiver secret').toString('base64')}`;

/**
 * The headers (and URL) of a request signed for `receiver`, as its provider signs: Stripe's
 * `Stripe-Signature`, GitHub's `X-Hub-Signature-256`, Slack's `v0=` signature, Twilio's
 * HMAC-SHA1 of the URL and the sorted parameters, SendGrid's ECDSA signature (with `privateKey`),
 * Shippo's URL token and/or HMAC, Standard Webhooks' three headers.
 */
export function signInbound(r: SignRequest): SignedRequest {
  const { receiver, body, mode } = r;
  const url = new URL(r.url);
  const seconds = Math.floor(r.at / 1000);
  const headers: Record<string, string> = {};
  const bad = mode === 'bad';
  const sign = mode !== 'none';
  const secretOf = (s: string | readonly string[]): string => {
    const first = typeof s === 'string' ? s : s[0];
    if (first === undefined) throw notConfigured(r.name, 'has no secret');
    return bad ? `${first}-wrong` : first;
  };
  switch (receiver.provider) {
    case 'stripe': {
      if (sign) {
        const v1 = hmacHex('sha256', secretOf(receiver.secret), `${seconds}.${body}`);
        headers['stripe-signature'] = `t=${seconds},v1=${v1}`;
      }
      break;
    }
    case 'github': {
      headers['x-github-event'] = r.event ?? 'ping';
      headers['x-github-delivery'] = r.id;
      if (sign)
        headers['x-hub-signature-256'] =
          `sha256=${hmacHex('sha256', secretOf(receiver.secret), body)}`;
      break;
    }
    case 'slack': {
      headers['x-slack-request-timestamp'] = String(seconds);
      if (sign)
        headers['x-slack-signature'] =
          `v0=${hmacHex('sha256', secretOf(receiver.secret), `v0:${seconds}:${body}`)}`;
      break;
    }
    case 'twilio': {
      headers['i-twilio-idempotency-token'] = r.id;
      if (sign) {
        const data = url.toString() + sortedParams(body);
        headers['x-twilio-signature'] = createHmac('sha1', secretOf(receiver.secret))
          .update(data, 'utf8')
          .digest('base64');
      }
      break;
    }
    case 'sendgrid': {
      headers['x-twilio-email-event-webhook-timestamp'] = String(seconds);
      if (sign) {
        const key = bad
          ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
          : r.privateKey;
        if (key === undefined)
          throw notConfigured(
            r.name,
            'is a SendGrid receiver: SendGrid signs with a private key the receiver never has; ' +
              'pass the private half of its public key as deliver(..., { privateKey })',
          );
        headers['x-twilio-email-event-webhook-signature'] = signBytes(
          'sha256',
          Buffer.from(`${seconds}${body}`, 'utf8'),
          { key: toPrivateKey(key), dsaEncoding: 'der' },
        ).toString('base64');
      }
      break;
    }
    case 'shippo': {
      const { token, hmacSecret } = receiver.secret;
      if (sign && token !== undefined) {
        const value = secretOf(token);
        if (receiver.tokenHeader !== undefined) headers[receiver.tokenHeader.toLowerCase()] = value;
        else url.searchParams.set(receiver.tokenParam ?? 'token', value);
      }
      if (sign && hmacSecret !== undefined) {
        const v1 = hmacHex('sha256', secretOf(hmacSecret), `${seconds}.${body}`);
        headers['shippo-auth-signature'] = `t=${seconds},v1=${v1}`;
      }
      break;
    }
    case 'standard-webhooks': {
      const secret = bad ? WRONG_STANDARD_SECRET : secretOf(receiver.secret);
      const signed = signedHeaders({ id: r.id, timestamp: seconds, body, secret });
      headers['webhook-id'] = signed['webhook-id'];
      headers['webhook-timestamp'] = signed['webhook-timestamp'];
      if (sign) headers['webhook-signature'] = signed['webhook-signature'];
      break;
    }
  }
  return { url, headers };
}

/** A fresh delivery id in the provider's style. */
export function deliveryIdFor(provider: ReceiverOptions['provider']): string {
  const hex = randomUUID().replace(/-/g, '');
  return provider === 'standard-webhooks' ? `msg_${hex}` : hex;
}

function hmacHex(algorithm: 'sha256', secret: string, data: string): string {
  return createHmac(algorithm, secret).update(data, 'utf8').digest('hex');
}

/** POST parameters as Twilio signs them: sorted by name, distinct values sorted, name+value. */
function sortedParams(form: string): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of new URLSearchParams(form)) {
    let values = byName.get(name);
    if (!values) byName.set(name, (values = new Set()));
    values.add(value);
  }
  let out = '';
  for (const name of [...byName.keys()].sort())
    for (const value of [...byName.get(name)!].sort()) out += name + value;
  return out;
}

function toPrivateKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') return key;
  const text = key.trim();
  if (text.startsWith('-----BEGIN')) return createPrivateKey(text);
  return createPrivateKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'pkcs8' });
}

function notConfigured(name: string, what: string): TestAppError {
  return new TestAppError(`receiver "${name}" ${what}`, 'not_configured');
}
