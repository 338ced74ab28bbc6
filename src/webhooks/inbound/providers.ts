/**
 * What differs between providers once a request has arrived: which verifier checks it, how its
 * body is parsed, how many events it carries, and which id each is deduplicated on. GitHub and
 * Twilio sign neither their delivery id nor a timestamp, so a captured request could be replayed
 * under a fresh id: their events are also deduplicated on a hash of what the signature covers.
 *
 * | Provider            | Events per request | Deduplicated on                                       | `type`                                   |
 * | ------------------- | ------------------ | ----------------------------------------------------- | ---------------------------------------- |
 * | `stripe`            | 1                  | the event's `id` (`evt_...`)                          | `type` (`charge.succeeded`)              |
 * | `github`            | 1                  | `X-GitHub-Delivery`, and the body's SHA-256           | `X-GitHub-Event` (`deployment_status`)   |
 * | `slack`             | 1                  | Events API `event_id`; else the body's SHA-256        | `event.type`, `type`, or the command      |
 * | `twilio`            | 1                  | `I-Twilio-Idempotency-Token`, and the signed data's SHA-256 | `MessageStatus`/`SmsStatus`/`CallStatus` |
 * | `sendgrid`          | one per array item | each item's `sg_event_id`                             | each item's `event` (`delivered`)        |
 * | `shippo`            | 1                  | `event` + `data.tracking_status.object_id`; else SHA-256 | `event` (`track_updated`)             |
 * | `standard-webhooks` | 1                  | `webhook-id`                                          | `type`                                   |
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../../core/errors.js';
import { readHeader } from '../internal.js';
import {
  verifyGitHub,
  verifySendGrid,
  verifyShippo,
  verifySlack,
  verifyStandardWebhook,
  verifyStripe,
  verifyTwilio,
} from '../verify/index.js';
import type { VerifiedWebhook, VerifyResult, WebhookHeaders } from '../verify/types.js';
import type { ReceiverOptions } from './types.js';

/** What the receiver knows of the request when it verifies it. */
export interface RequestFacts {
  raw: Buffer;
  headers: WebhookHeaders;
  /** The public URL the provider called (Twilio, Shippo's token). */
  url: string;
  now: number;
}

/** One event of a verified request, before routing. */
export interface ParsedEvent {
  id: string;
  type: string;
  data: unknown;
  /**
   * When `id` is not covered by the signature and no timestamp is signed (GitHub, Twilio): the
   * hash of what the signature covers, deduplicated on as well (see `VerifiedWebhook.replayKey`).
   */
  replayKey?: string;
}

/** The parsed request: its events, or an answer to give at once (Slack's URL check). */
export type Parsed = { events: ParsedEvent[] } | { reply: unknown };

export function verifyRequest(o: ReceiverOptions, f: RequestFacts): VerifyResult {
  const common = {
    rawBody: f.raw,
    headers: f.headers,
    now: f.now,
    ...(o.toleranceSeconds !== undefined ? { toleranceSeconds: o.toleranceSeconds } : {}),
  };
  switch (o.provider) {
    case 'stripe':
      return verifyStripe({ ...common, secret: o.secret });
    case 'github':
      return verifyGitHub({ ...common, secret: o.secret });
    case 'slack':
      return verifySlack({ ...common, secret: o.secret });
    case 'twilio':
      return verifyTwilio({ ...common, secret: o.secret, url: f.url });
    case 'sendgrid':
      return verifySendGrid({ ...common, secret: o.secret });
    case 'shippo':
      return verifyShippo({
        ...common,
        secret: o.secret,
        url: f.url,
        ...(o.tokenParam !== undefined ? { tokenParam: o.tokenParam } : {}),
        ...(o.tokenHeader !== undefined ? { tokenHeader: o.tokenHeader } : {}),
      });
    case 'standard-webhooks':
      return verifyStandardWebhook({ ...common, secret: o.secret });
  }
}

/** Splits a verified request into events. Throws a 400 when the verified body is not parseable. */
export function parseRequest(o: ReceiverOptions, v: VerifiedWebhook, f: RequestFacts): Parsed {
  const hash = (): string => createHash('sha256').update(f.raw).digest('hex').slice(0, 40);
  switch (o.provider) {
    case 'stripe': {
      const data = json(v.body) as { id?: unknown; type?: unknown };
      return one(str(data.id) ?? hash(), str(data.type) ?? 'stripe', data);
    }
    case 'github':
      return one(v.id ?? hash(), v.eventType ?? 'github', json(v.body), v.replayKey);
    case 'slack': {
      const data = slackBody(v.body, f.headers);
      const d = data as {
        type?: unknown;
        challenge?: unknown;
        event_id?: unknown;
        event?: { type?: unknown };
        command?: unknown;
      };
      if (d.type === 'url_verification') return { reply: { challenge: d.challenge } };
      return one(
        str(d.event_id) ?? hash(),
        str(d.event?.type) ?? str(d.type) ?? str(d.command) ?? 'slack',
        data,
      );
    }
    case 'twilio': {
      const data = isJson(f.headers) ? json(v.body) : form(v.body);
      const d = data as Record<string, unknown>;
      const type = str(d.MessageStatus) ?? str(d.SmsStatus) ?? str(d.CallStatus) ?? 'twilio';
      return one(v.id ?? hash(), type, data, v.replayKey);
    }
    case 'sendgrid': {
      const data = json(v.body);
      if (!Array.isArray(data))
        throw new ValidationError('a SendGrid event webhook body is a JSON array of events');
      return {
        events: data.map((e: { sg_event_id?: unknown; event?: unknown }) => ({
          id:
            str(e?.sg_event_id) ??
            createHash('sha256').update(JSON.stringify(e)).digest('hex').slice(0, 40),
          type: str(e?.event) ?? 'sendgrid',
          data: e,
        })),
      };
    }
    case 'shippo': {
      const data = json(v.body) as {
        event?: unknown;
        data?: { tracking_status?: { object_id?: unknown } };
      };
      const status = str(data.data?.tracking_status?.object_id);
      const type = str(data.event) ?? 'shippo';
      return one(status ? `${type}:${status}` : hash(), type, data);
    }
    case 'standard-webhooks': {
      const data = json(v.body) as { type?: unknown };
      return one(v.id ?? hash(), str(data.type) ?? 'webhook', data);
    }
  }
}

function one(id: string, type: string, data: unknown, replayKey?: string): Parsed {
  return { events: [replayKey === undefined ? { id, type, data } : { id, type, data, replayKey }] };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function json(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ValidationError('the webhook body verified but is not valid JSON');
  }
}

function form(text: string): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(text));
}

function isJson(headers: WebhookHeaders): boolean {
  const type = readHeader(headers, 'content-type').value ?? '';
  return type.toLowerCase().includes('json');
}

/** Slack sends JSON (Events API), or a form (commands), whose `payload` is JSON (interactivity). */
function slackBody(text: string, headers: WebhookHeaders): unknown {
  if (isJson(headers) || text.trimStart().startsWith('{')) return json(text);
  const params = form(text);
  return params.payload !== undefined ? json(params.payload) : params;
}
