/** The outbound options with their defaults applied and checked at startup. */
import { parseDuration } from '../../core/duration.js';
import { policyOf, type ResolvedRetryPolicy } from '../../core/retry.js';
import { RetrySchedule } from '../schedule.js';
import { checkAllowList } from '../ssrf.js';
import { breakerOptions } from './breakers.js';
import type { Integration } from '../../integrations/declarations/config.js';
import type { EventSubscriber, OutboundOptions, OutboundSignature } from './types.js';

/** Options with defaults applied and checked. */
export interface ResolvedOutbound {
  retry: ResolvedRetryPolicy;
  retentionMs: number;
  timeoutMs: number;
  responseBodyLimit: number;
  maxPayloadBytes: number;
  connections: number;
  allow: readonly string[];
  cacheTtlMs: number;
  directFanout: number;
  subscribers: readonly EventSubscriber[];
  signature: OutboundSignature | undefined;
}

/** Applies defaults and checks every option, so a bad one fails at startup. */
export function resolveOutbound(o: OutboundOptions): ResolvedOutbound {
  const probe = new RetrySchedule({
    ...(o.retry !== undefined ? { retry: o.retry } : {}),
    now: () => 0,
    random: () => 0,
  });
  const positive = (name: string, v: number | undefined, dflt: number): number => {
    const n = v ?? dflt;
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`webhooks.${name} must be a whole number ≥ 1, not ${n}`);
    return n;
  };
  checkAllowList(o.allow ?? []);
  const subscribers = o.onDeliveryFailed === undefined ? [] : [o.onDeliveryFailed].flat();
  for (const s of subscribers) checkSubscriber(s);
  breakerOptions(o.breaker);
  return {
    retry: probe.policy,
    retentionMs: parseDuration(o.retention ?? '7d'),
    timeoutMs: parseDuration(o.timeout ?? '15s'),
    responseBodyLimit: positive('responseBodyLimit', o.responseBodyLimit, 1024),
    maxPayloadBytes: positive('maxPayloadBytes', o.maxPayloadBytes, 256 * 1024),
    connections: positive('connectionsPerEndpoint', o.connectionsPerEndpoint, 32),
    allow: o.allow ?? [],
    cacheTtlMs: parseDuration(o.cacheTtl ?? '1s'),
    directFanout: positive('directFanout', o.directFanout, 16),
    subscribers,
    signature: checkSignature(o.signature),
  };
}

function checkSubscriber(s: EventSubscriber): void {
  if (!s || typeof s.handler !== 'string' || !s.target?.handlers?.[s.handler])
    throw new TypeError(
      `webhooks.onDeliveryFailed: ${s?.target?.name ?? '(no target)'} has no handler "${String(s?.handler)}"`,
    );
  if (s.target.kind !== 'service' && s.key === undefined)
    throw new TypeError(
      `webhooks.onDeliveryFailed: ${s.target.name} is a ${s.target.kind}; give a key (a string or a function of the event)`,
    );
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the delivery sets itself: an extra signature header may not replace them. */
const RESERVED = ['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'host'];

function checkSignature(s: OutboundSignature | undefined): OutboundSignature | undefined {
  if (s === undefined) return undefined;
  if (!['sha1', 'sha256', 'sha512'].includes(s.algorithm))
    throw new RangeError(
      `webhooks.signature.algorithm must be sha1, sha256 or sha512, not ${String(s.algorithm)}`,
    );
  if (typeof s.header !== 'string' || !HEADER_NAME.test(s.header))
    throw new RangeError(`webhooks.signature.header is not a header name: ${String(s.header)}`);
  if (RESERVED.includes(s.header.toLowerCase()))
    throw new RangeError(`webhooks.signature.header cannot be ${s.header}: the delivery sets it`);
  return { algorithm: s.algorithm, header: s.header };
}

/**
 * The outbound options a `type: webhook` integration declaration stands for: its `signature`
 * (an extra HMAC header, see {@link OutboundSignature}), its retry policy (`retry` and
 * `retry_delays`, the same `RetryPolicy`; without jitter unless declared: the declared delays are
 * followed exactly; `retry: none` is one attempt) and its dead-letter retention. Fields the declaration leaves out are left
 * out here, so the webhooks defaults apply to them. `startApp` merges these under the app's
 * `webhooks` options (a field set there wins).
 *
 * @example
 * ```ts
 * const [decl] = parseIntegrations(`
 *   integration WebhookDeliveryService {
 *     type: webhook
 *     signature: { algorithm: "sha256", header: "X-Webhook-Signature" }
 *     retry: 5 times with exponential_backoff
 *     retry_delays: [1m, 5m, 30m, 2h, 8h]
 *     dead_letter: { enabled: true, retention: 7d }
 *   }`);
 * const webhooks = createWebhooks({ ...outboundFromDeclaration(integration(decl!)), allow: ['127.0.0.1'] });
 * ```
 */
export function outboundFromDeclaration(decl: Integration): OutboundOptions {
  if (decl.type !== 'webhook')
    throw new RangeError(`${decl.name} is a ${decl.type} integration, not a webhook one`);
  const out: { -readonly [K in keyof OutboundOptions]: OutboundOptions[K] } = {};
  if (decl.signature !== undefined)
    out.signature = { algorithm: decl.signature.algorithm, header: decl.signature.header };
  // A declaration without `retry` gets the integrations' default policy; only a declared retry
  // says something about webhook delivery. Its delays are followed exactly unless it declares
  // a jitter (the integrations' default ±25% is not the webhooks').
  const declared = decl.config.retry;
  if (declared !== undefined) {
    out.retry = {
      ...policyOf(decl.retry),
      jitter: declared === false ? 0 : (declared.jitter ?? 0),
    };
  }
  if (decl.deadLetter?.retentionMs !== undefined) out.retention = decl.deadLetter.retentionMs;
  return out;
}
