import type { InvocationFilter, InvocationStatus } from './types.js';

/**
 * The SQL of `listInvocations`, shared by both adapters so they answer the same filters with the
 * same query shape (and so the same indexes of migration 9 serve them). Only the dialect differs:
 * placeholders, the table's name and how the error code is read out of the `error` JSON text.
 *
 * Every query walks an index in `seq` order and stops after `limit` rows, so a page costs the
 * same at a thousand invocations as at a million:
 * - one status: `invocations_active` or `invocations_finished` (status, seq). Both are partial,
 *   so the query repeats the index's own WHERE term word for word: SQLite uses a partial index
 *   only when the query contains that term.
 * - several statuses: one such walk per status, merged (UNION ALL, each arm limited): an
 *   `IN (...)` over (status, seq) would read every matching row and sort them.
 * - service (+ handler), key, error code, created time: their own (column, seq) indexes; the
 *   database picks the most selective one and checks the other terms on the rows it reads.
 */
export interface ListDialect {
  /** The quoted table name, e.g. `invocations` or `"keel".invocations`. */
  table: string;
  /** Adds a parameter and returns its placeholder (`?` or `$n`). */
  param(value: string | number): string;
  /** The expression of the error code; must be the expression of the index `invocations_error`. */
  errorCode: string;
}

/** Must match the WHERE clause of the partial index `invocations_active`. */
export const ACTIVE_TERM = "status NOT IN ('completed', 'failed')";
/** Must match the WHERE clause of the partial index `invocations_finished` (migration 9). */
export const FINISHED_TERM = "status IN ('completed', 'failed')";
/** The error code inside the `error` JSON text, as SQLite indexes it. */
export const SQLITE_ERROR_CODE = "json_extract(error, '$.code')";
/**
 * The same, as PostgreSQL indexes it (migration 9). PostgreSQL refuses to turn the escapes
 * `\u0000` and lone surrogates (`\ud800`) into text, and a lone surrogate even as `json`
 * input; JSON.stringify writes both (an error message cut in the middle of an emoji), and an
 * index expression that fails would fail the write of that invocation. So those escapes are
 * dropped first (an escaped backslash is consumed as a pair, so `\\u0000` stays): a code
 * holding them is found without them; every other code is found as it is.
 */
export const POSTGRES_ERROR_CODE = String.raw`(regexp_replace(error, '(\\[^u]|\\u(?![dD][89a-fA-F]|0000)[0-9a-fA-F]{4})|\\u[0-9a-fA-F]{4}', '\1', 'g')::json ->> 'code')`;

const FINISHED: ReadonlySet<InvocationStatus> = new Set(['completed', 'failed']);

/** The statuses of a filter, deduplicated, in a stable order; empty means any. */
export function statusesOf(filter: InvocationFilter): InvocationStatus[] {
  const s = filter.status;
  if (s === undefined) return [];
  return [...new Set(typeof s === 'string' ? [s] : s)].sort();
}

/**
 * Builds the listing query. Parameters are added through `d.param` in the order they appear.
 * The text depends only on which filters are set (and how many statuses), never on their
 * values, so adapters can cache one prepared statement per shape.
 */
export function listInvocationsSql(
  filter: InvocationFilter,
  limit: number,
  d: ListDialect,
): string {
  const statuses = statusesOf(filter);
  const arms = statuses.length === 0 ? [undefined] : statuses;
  const parts = arms.map((status) => {
    const where: string[] = [];
    if (status !== undefined) {
      where.push(`status = ${d.param(status)}`);
      where.push(FINISHED.has(status) ? FINISHED_TERM : ACTIVE_TERM);
    }
    if (filter.service !== undefined) where.push(`service = ${d.param(filter.service)}`);
    if (filter.handler !== undefined) where.push(`handler = ${d.param(filter.handler)}`);
    if (filter.key !== undefined) where.push(`key = ${d.param(filter.key)}`);
    if (filter.errorCode !== undefined) {
      // The partial index's own term, then the indexed expression.
      where.push('error IS NOT NULL');
      where.push(`${d.errorCode} = ${d.param(filter.errorCode)}`);
    }
    if (filter.createdSince !== undefined)
      where.push(`created_at >= ${d.param(filter.createdSince)}`);
    if (filter.createdUntil !== undefined)
      where.push(`created_at <= ${d.param(filter.createdUntil)}`);
    if (filter.beforeSeq !== undefined) where.push(`seq < ${d.param(filter.beforeSeq)}`);
    const select = (columns: string) =>
      `SELECT ${columns} FROM ${d.table}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}` +
      ` ORDER BY seq DESC LIMIT ${d.param(limit)}`;
    if (filter.createdSince === undefined && filter.createdUntil === undefined) return select('*');
    // A time range in the past matches rows the seq order reaches only after every newer one,
    // so it is read through invocations_created instead, and its rows must then be sorted by
    // seq: sort only their seqs (read from the index alone), then fetch the page's rows.
    return `SELECT * FROM ${d.table} WHERE seq IN (${select('seq')}) ORDER BY seq DESC`;
  });
  if (parts.length === 1) return parts[0]!;
  // Each arm is limited too, so the merge reads at most `limit` rows per status.
  return (
    parts.map((p, i) => `SELECT * FROM (${p}) AS arm${i}`).join(' UNION ALL ') +
    ` ORDER BY seq DESC LIMIT ${d.param(limit)}`
  );
}
