/**
 * SendGrid's Mail Send in-process: 202 with an `X-Message-Id` for a valid message (200 in
 * sandbox mode, as SendGrid does), 400 with SendGrid's `errors` list for an invalid one, and 403
 * for a sender at the domain `unverified.test` (SendGrid refuses senders that are not a verified
 * Sender Identity).
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  base62Id,
  bodyObject,
  connectorMock,
  json,
  routes,
  stableJson,
  type ConnectorMock,
} from './mock-kit.js';

const HELP = 'http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html';

/** Senders at this domain get SendGrid's 403 "not a verified Sender Identity". */
export const SENDGRID_UNVERIFIED_DOMAIN = 'unverified.test';

/**
 * A SendGrid mock. Accepted messages are in `requests`.
 *
 * @example
 * ```ts
 * const mock = sendgridMock();
 * const mail = sendgrid({ mock, mockMode: true });
 * ```
 */
export function sendgridMock(): ConnectorMock {
  return connectorMock(
    () =>
      routes([{ method: 'POST', path: '/v3/mail/send', handle: send }], () =>
        errors(404, [{ message: 'resource not found', field: null, help: null }]),
      ),
    (status) =>
      status === 429
        ? {
            ...errors(429, [{ message: 'too many requests', field: null, help: null }]),
            headers: { 'content-type': 'application/json', 'retry-after': '1' },
          }
        : errors(status, [
            {
              message:
                status >= 500
                  ? 'internal server error (mock failure)'
                  : `mock failure with status ${status}`,
              field: null,
              help: null,
            },
          ]),
  );
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

function send(req: MockRequest): MockResponse {
  const m = bodyObject(req.body);
  const problems: { message: string; field: string | null; help: string | null }[] = [];
  const personalizations = Array.isArray(m.personalizations)
    ? (m.personalizations as Record<string, unknown>[])
    : [];
  if (personalizations.length === 0) {
    problems.push({
      message: 'The personalizations field is required and must have at least one personalization.',
      field: 'personalizations',
      help: `${HELP}#message.personalizations`,
    });
  }
  personalizations.forEach((p, i) => {
    const to = Array.isArray(p.to) ? (p.to as Record<string, unknown>[]) : [];
    if (to.length === 0) {
      problems.push({
        message:
          'The to array is required for all personalization objects, and must have at least one email object with a valid email address.',
        field: `personalizations.${i}.to`,
        help: `${HELP}#message.personalizations.to`,
      });
    }
    to.forEach((a, j) => {
      if (typeof a.email !== 'string' || !EMAIL.test(a.email)) {
        problems.push({
          message: 'Does not contain a valid address.',
          field: `personalizations.${i}.to.${j}.email`,
          help: `${HELP}#message.personalizations.to`,
        });
      }
    });
  });
  const from = (m.from ?? {}) as Record<string, unknown>;
  if (m.from === undefined) {
    problems.push({
      message:
        'The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.',
      field: 'from',
      help: `${HELP}#message.from`,
    });
  } else if (typeof from.email !== 'string' || !EMAIL.test(from.email)) {
    problems.push({
      message: 'The from email does not contain a valid address.',
      field: 'from.email',
      help: `${HELP}#message.from`,
    });
  }
  const template = typeof m.template_id === 'string';
  const everySubject =
    personalizations.length > 0 && personalizations.every((p) => typeof p.subject === 'string');
  if (!template && typeof m.subject !== 'string' && !everySubject) {
    problems.push({
      message:
        'The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.',
      field: 'subject',
      help: `${HELP}#message.subject`,
    });
  }
  if (!template && !(Array.isArray(m.content) && m.content.length > 0)) {
    problems.push({
      message:
        'Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block. We typically suggest both text/plain and text/html blocks are included, but only one block is required.',
      field: 'content',
      help: `${HELP}#message.content`,
    });
  }
  if (problems.length > 0) return errors(400, problems);
  if (
    typeof from.email === 'string' &&
    from.email.toLowerCase().endsWith(`@${SENDGRID_UNVERIFIED_DOMAIN}`)
  ) {
    return errors(403, [
      {
        message:
          'The from address does not match a verified Sender Identity. Mail cannot be sent until this error is resolved. Visit https://sendgrid.com/docs/for-developers/sending-email/sender-identity/ to see the Sender Identity requirements',
        field: 'from',
        help: null,
      },
    ]);
  }
  const sandbox =
    (m.mail_settings as { sandbox_mode?: { enable?: unknown } } | undefined)?.sandbox_mode
      ?.enable === true;
  const id = base62Id(22, 'sendgrid', req.headers['idempotency-key'] ?? stableJson(m));
  return { status: sandbox ? 200 : 202, headers: { 'x-message-id': id }, body: undefined };
}

function errors(
  status: number,
  list: { message: string; field: string | null; help: string | null }[],
): MockResponse {
  return json(status, { errors: list });
}
