import type { Definition } from '../core/definitions.js';

/**
 * The dedupe key an invocation is stored under: the one thing that makes a repeated request
 * answer the invocation it already created.
 *
 * - A workflow's `run` is keyed by the workflow key alone, `wf:{service}/{key}`: it runs once
 *   per workflow key, so an `Idempotency-Key` on it adds nothing (it cannot start a second run,
 *   nor be the only thing that dedupes it).
 * - Any other handler with an idempotency key: `idem:{service}/{key}/{handler}/{idempotencyKey}`,
 *   where the object key and the handler name are escaped (`%` as `%25`, `/` as `%2F`). Service
 *   names cannot contain `/` (see definitions.ts), and the idempotency key is everything after
 *   the third `/`, so the encoding is injective: `Counter` `a` `add` `add/x` and `Counter`
 *   `a/add` `add` `x` are different keys. Keys and handler names without `/` or `%` keep the
 *   format older versions stored, so their stored keys still match after an upgrade.
 * - Anything else: no dedupe key.
 */
export function dedupeKey(
  kind: Definition['kind'],
  service: string,
  handler: string,
  key: string,
  idempotencyKey: string | undefined,
): string | undefined {
  if (kind === 'workflow' && handler === 'run') return `wf:${service}/${key}`;
  if (!idempotencyKey) return undefined;
  return `${IDEM}${service}/${escape(key)}/${escape(handler)}/${idempotencyKey}`;
}

/** The idempotency key inside a dedupe key made by {@link dedupeKey}, if it has one. */
export function idempotencyKeyOf(dedupe: string | undefined): string | undefined {
  if (!dedupe?.startsWith(IDEM)) return undefined;
  let at = IDEM.length;
  for (let i = 0; i < 3; i++) {
    at = dedupe.indexOf('/', at) + 1;
    if (at === 0) return undefined;
  }
  return dedupe.slice(at);
}

const IDEM = 'idem:';

function escape(part: string): string {
  return part.includes('/') || part.includes('%')
    ? part.replaceAll('%', '%25').replaceAll('/', '%2F')
    : part;
}
