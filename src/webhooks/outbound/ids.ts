/**
 * Ids of endpoints, messages and deliveries.
 *
 * A delivery id names its endpoint and sorts newest first within it: the delivery log is kept in
 * the key-value space under `{endpointId}/{sortKey}`, so listing an endpoint's deliveries newest
 * first, and replaying those since a time, is one range scan with no index to maintain.
 */
import { randomBytes } from 'node:crypto';

/** Random bytes drawn in blocks: one `randomBytes` call per 512 ids instead of one per id. */
let pool = Buffer.alloc(0);
let used = 0;
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    pool = randomBytes(4096);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  used += bytes;
  return hex;
}

/** 2^48 - 1: epoch milliseconds fit in 48 bits until the year 10889. */
const MAX_TIME = 0xffff_ffff_ffff;

export function newEndpointId(): string {
  return `ep_${randomHex(10)}`;
}

/** A message id (`webhook-id`): time-ordered, unique. */
export function newMessageId(now: number): string {
  return `msg_${now.toString(16).padStart(12, '0')}${randomHex(8)}`;
}

/** The sort key of a delivery created at `now`: later deliveries sort first. */
export function deliverySortKey(now: number): string {
  return (MAX_TIME - now).toString(16).padStart(12, '0') + randomHex(4);
}

/** The creation time a sort key encodes. */
export function sortKeyTime(sortKey: string): number {
  return MAX_TIME - parseInt(sortKey.slice(0, 12), 16);
}

/** The smallest sort key of a delivery created at or before `time` (for "since" scans). */
export function sortKeyBound(time: number): string {
  return (MAX_TIME - time).toString(16).padStart(12, '0');
}

export function deliveryId(endpointId: string, sortKey: string): string {
  return `dlv_${endpointId.slice(3)}_${sortKey}`;
}

/** The endpoint and log key of a delivery id, or undefined when it is not one. */
export function parseDeliveryId(
  id: string,
): { endpointId: string; sortKey: string; logKey: string } | undefined {
  const m = /^dlv_([0-9a-f]{20})_([0-9a-f]{20})$/.exec(id);
  if (!m) return undefined;
  const endpointId = `ep_${m[1]}`;
  return { endpointId, sortKey: m[2]!, logKey: `${endpointId}/${m[2]}` };
}
