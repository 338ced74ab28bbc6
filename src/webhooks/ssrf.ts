/**
 * Outbound URL safety for webhook deliveries: the shared address guard of `src/http`
 * (`../http/address-guard.ts`, which explains the checks and DNS rebinding) with webhook wording
 * in its refusals and `WebhookConfigError` for a bad allow-list. Delivery itself goes through
 * `HttpClient` with a `guard`, which checks every attempt and connects to the vetted addresses.
 */
import {
  AllowListError,
  checkAllowList as checkAllowListShared,
  checkUrl as checkUrlShared,
  type CheckUrlOptions,
  type CheckUrlResult,
} from '../http/address-guard.js';
import { WebhookConfigError } from './errors.js';

export {
  classifyAddress,
  parseIp,
  pinnedLookup,
  type AddressCategory,
  type CheckUrlOptions,
  type CheckUrlResult,
  type ResolvedAddress,
  type Resolver,
  type UrlRefusal,
} from '../http/address-guard.js';

function asConfigError(err: unknown): unknown {
  return err instanceof AllowListError ? new WebhookConfigError(err.message) : err;
}

/**
 * Checks an allow-list up front (at configuration time) instead of at the first delivery:
 * throws `WebhookConfigError` naming the first entry that is neither a host, an address nor a
 * CIDR block.
 *
 * @example
 * ```ts
 * checkAllowList(['127.0.0.1', '*.test', '10.0.0.0/8']); // fine
 * checkAllowList(['10.0.0.0/33']); // throws WebhookConfigError
 * ```
 */
export function checkAllowList(entries: readonly string[]): void {
  try {
    checkAllowListShared(entries);
  } catch (err) {
    throw asConfigError(err);
  }
}

/**
 * Checks that a webhook URL may be delivered to, and returns the addresses to connect to. Never
 * throws for a bad URL (only for a bad allow-list, as `WebhookConfigError`): the refusal says
 * what was wrong.
 *
 * @example
 * ```ts
 * const checked = await checkUrl(endpoint.url, { allow: config.webhooks.allow });
 * if (!checked.ok) return recordAttempt({ error: checked.reason }); // e.g. 'blocked_address'
 * ```
 */
export async function checkUrl(
  input: string | URL,
  options: CheckUrlOptions = {},
): Promise<CheckUrlResult> {
  try {
    return await checkUrlShared(input, { noun: 'webhook', ...options });
  } catch (err) {
    throw asConfigError(err);
  }
}
