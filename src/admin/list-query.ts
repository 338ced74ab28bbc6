/**
 * The query of `GET /invocations`: read strictly, because an operator who mistypes a filter
 * must be told, not handed an unfiltered list that looks like an answer.
 */
import { KeelError } from '../core/errors.js';
import type { InvocationInfo, ListFilter } from '../engine/engine.js';

type Status = InvocationInfo['status'];

/** Every status, in lifecycle order (the order the 400 lists them in). */
export const STATUSES = [
  'queued',
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
  'failed',
] as const satisfies readonly Status[];
// A status the engine gains but this list lacks fails to compile, so the 400 never lies.
const _everyStatus: [Exclude<Status, (typeof STATUSES)[number]>] extends [never] ? true : never =
  true;

/** The query parameters `GET /invocations` takes. */
export const LIST_PARAMS = [
  'status',
  'service',
  'handler',
  'key',
  'error',
  'since',
  'until',
  'limit',
  'cursor',
] as const;

const MAX_LIMIT = 1000;

/** A bad query of the admin API: HTTP 400 `invalid_query`. */
export function invalidQuery(message: string): KeelError {
  return new KeelError(message, { code: 'invalid_query', status: 400 });
}

/**
 * Reads the query string of `GET /invocations` into the engine's filter. Anything it does not
 * understand is a 400 `invalid_query` saying what was wrong, never silently ignored.
 *
 * @example
 * ```ts
 * listFilterFromQuery('status=failed,backing-off&service=Orders&since=2026-12-07T00:00:00Z');
 * // → { status: ['failed', 'backing-off'], service: 'Orders', since: 1796601600000 }
 * ```
 */
export function listFilterFromQuery(query: string): ListFilter {
  const params = new URLSearchParams(query);
  for (const name of new Set(params.keys())) {
    if (!(LIST_PARAMS as readonly string[]).includes(name)) {
      throw invalidQuery(
        `unknown query parameter "${name}": GET /invocations takes ${LIST_PARAMS.join(', ')}`,
      );
    }
    const values = params.getAll(name);
    if (values.length > 1)
      throw invalidQuery(
        `"${name}" is given ${values.length} times; give it once` +
          (name === 'status' ? ' (several statuses: status=failed,backing-off)' : ''),
      );
    if (values[0] === '') throw invalidQuery(`"${name}" is empty: give it a value or leave it out`);
  }
  const filter: ListFilter = {};
  const status = params.get('status');
  if (status !== null) filter.status = parseStatuses(status);
  const limit = params.get('limit');
  if (limit !== null) {
    const n = /^\d{1,7}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= MAX_LIMIT))
      throw invalidQuery(`limit "${limit}" must be a whole number from 1 to ${MAX_LIMIT}`);
    filter.limit = n;
  }
  for (const name of ['service', 'handler', 'key', 'error', 'cursor'] as const) {
    const v = params.get(name);
    if (v !== null) filter[name] = v;
  }
  const since = params.get('since');
  if (since !== null) filter.since = parseTime(since, 'since');
  const until = params.get('until');
  if (until !== null) filter.until = parseTime(until, 'until');
  if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) {
    throw invalidQuery(
      `since (${since}) is after until (${until}): the range would be empty; swap them`,
    );
  }
  return filter;
}

/** `failed` or `failed,backing-off`: one status, or several (any of them matches). */
export function parseStatuses(text: string): Status | Status[] {
  const parts = text.split(',').map((s) => s.trim());
  for (const p of parts) {
    if (p === '')
      throw invalidQuery(`status "${text}" has an empty item: separate statuses by single commas`);
    if (!(STATUSES as readonly string[]).includes(p))
      throw invalidQuery(`unknown status "${p}": the statuses are ${STATUSES.join(', ')}`);
  }
  return parts.length === 1 ? (parts[0] as Status) : [...new Set(parts as Status[])];
}

/**
 * A time bound: epoch milliseconds (`1796601600000`) or an ISO 8601 date-time with its zone
 * (`2026-12-07T00:00:00Z`, `2026-12-07T01:00:00+01:00`) or a plain date (`2026-12-07`, UTC).
 * A date-time without a zone is refused: it would mean the server's zone, not the operator's.
 */
export function parseTime(text: string, name: string): number {
  if (/^\d{1,15}$/.test(text)) return Number(text);
  const iso =
    /^\d{4}-\d{2}-\d{2}$/.test(text) ||
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i.test(text);
  const ms = iso ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) {
    throw invalidQuery(
      `${name} "${text}" is not a time: give epoch milliseconds (e.g. 1796601600000) or an ISO ` +
        'date-time with its zone (e.g. 2026-12-07T00:00:00Z)',
    );
  }
  return ms;
}
