/** The outbound options with their defaults applied and checked at startup. */
import { parseDuration } from '../../core/duration.js';
import { RetrySchedule } from '../schedule.js';
import { checkAllowList } from '../ssrf.js';
import { breakerOptions } from './breakers.js';
import type { EventSubscriber, OutboundOptions } from './types.js';

/** Options with defaults applied and checked. */
export interface ResolvedOutbound {
  schedule: readonly number[];
  jitter: number;
  maxRetryAfterMs: number;
  retentionMs: number;
  timeoutMs: number;
  responseBodyLimit: number;
  maxPayloadBytes: number;
  connections: number;
  allow: readonly string[];
  cacheTtlMs: number;
  directFanout: number;
  subscribers: readonly EventSubscriber[];
}

/** Applies defaults and checks every option, so a bad one fails at startup. */
export function resolveOutbound(o: OutboundOptions): ResolvedOutbound {
  const probe = new RetrySchedule({
    ...(o.schedule !== undefined ? { schedule: o.schedule } : {}),
    ...(o.jitter !== undefined ? { jitter: o.jitter } : {}),
    ...(o.maxRetryAfter !== undefined ? { maxRetryAfter: o.maxRetryAfter } : {}),
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
    schedule: probe.delays,
    jitter: probe.jitter,
    maxRetryAfterMs: probe.maxRetryAfterMs,
    retentionMs: parseDuration(o.retention ?? '7d'),
    timeoutMs: parseDuration(o.timeout ?? '15s'),
    responseBodyLimit: positive('responseBodyLimit', o.responseBodyLimit, 1024),
    maxPayloadBytes: positive('maxPayloadBytes', o.maxPayloadBytes, 256 * 1024),
    connections: positive('connectionsPerEndpoint', o.connectionsPerEndpoint, 32),
    allow: o.allow ?? [],
    cacheTtlMs: parseDuration(o.cacheTtl ?? '1s'),
    directFanout: positive('directFanout', o.directFanout, 16),
    subscribers,
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
