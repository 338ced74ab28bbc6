import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { WebhookConfigError } from '../errors.js';
import {
  accept,
  checkTimestamp,
  parseBase64,
  reject,
  requireHeader,
  toBuffer,
} from '../internal.js';
import type { VerifyInput, VerifyResult } from './types.js';

const SIGNATURE = 'X-Twilio-Email-Event-Webhook-Signature';
const TIMESTAMP = 'X-Twilio-Email-Event-Webhook-Timestamp';

/**
 * A SendGrid verification key: the base64 DER (SubjectPublicKeyInfo) string the SendGrid console
 * shows, a PEM `-----BEGIN PUBLIC KEY-----` block, or a `KeyObject`; a list during a rotation.
 */
export type SendGridKey = string | KeyObject;

/**
 * Verifies a SendGrid (Twilio SendGrid) signed Event Webhook: an ECDSA P-256 / SHA-256 signature,
 * base64 DER in `X-Twilio-Email-Event-Webhook-Signature`, over the bytes of
 * `X-Twilio-Email-Event-Webhook-Timestamp` followed by the raw body, checked with the public
 * verification key. SendGrid documents no replay window; Keel rejects timestamps more than
 * `toleranceSeconds` (default 300) away from `now`. Deduplicate on each event's `sg_event_id`.
 *
 * @example
 * ```ts
 * const result = verifySendGrid({ rawBody, headers: req.headers, secret: process.env.SENDGRID_WEBHOOK_PUBLIC_KEY! });
 * if (result.ok) for (const event of JSON.parse(result.body)) await record(event.sg_event_id, event);
 * ```
 */
export function verifySendGrid(
  input: VerifyInput<SendGridKey | readonly SendGridKey[]>,
): VerifyResult {
  const keys = (Array.isArray(input.secret) ? input.secret : [input.secret]) as SendGridKey[];
  if (keys.length === 0) throw keyError('no verification key was given');
  const publicKeys = keys.map(toPublicKey);

  const signature = requireHeader(input.headers, SIGNATURE);
  if ('reason' in signature) return reject('sendgrid', signature.reason);
  const timestamp = requireHeader(input.headers, TIMESTAMP);
  if ('reason' in timestamp) return reject('sendgrid', timestamp.reason);

  const der = parseBase64(signature.value);
  if (der === undefined) {
    return reject('sendgrid', `${SIGNATURE} is malformed: expected a base64 DER ECDSA signature`);
  }
  const checked = checkTimestamp(timestamp.value, TIMESTAMP, input.now, input.toleranceSeconds);
  if ('reason' in checked) return reject('sendgrid', checked.reason);

  const body = toBuffer(input.rawBody);
  const signed = Buffer.concat([Buffer.from(timestamp.value, 'utf8'), body]);
  let valid = false;
  for (const key of publicKeys) {
    try {
      if (verifySignature('sha256', signed, { key, dsaEncoding: 'der' }, der)) valid = true;
    } catch {
      // A signature that is not well-formed DER is simply not valid.
    }
  }
  if (!valid) {
    return reject(
      'sendgrid',
      `${SIGNATURE} does not verify over the timestamp and body: a wrong verification key, or the body was parsed or changed before verification`,
    );
  }
  return accept('sendgrid', body, { timestamp: checked.seconds });
}

function toPublicKey(key: SendGridKey): KeyObject {
  let object: KeyObject;
  if (typeof key !== 'string') {
    object = key;
  } else {
    const text = key.trim();
    try {
      if (text.startsWith('-----BEGIN')) {
        object = createPublicKey(text);
      } else {
        const der = parseBase64(text.replace(/\s+/g, ''));
        if (der === undefined) throw new Error('not base64');
        object = createPublicKey({ key: der, format: 'der', type: 'spki' });
      }
    } catch {
      throw keyError('the key is neither base64 DER (SubjectPublicKeyInfo) nor PEM');
    }
  }
  if (
    object.type !== 'public' ||
    object.asymmetricKeyType !== 'ec' ||
    object.asymmetricKeyDetails?.namedCurve !== 'prime256v1'
  ) {
    throw keyError('the key is not an ECDSA P-256 public key');
  }
  return object;
}

function keyError(detail: string): WebhookConfigError {
  return new WebhookConfigError(
    `SendGrid webhook verification needs the public verification key from Settings > Mail Settings > Event Webhook (signed webhook): ${detail}`,
  );
}
