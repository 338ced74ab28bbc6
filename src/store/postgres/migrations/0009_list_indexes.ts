/**
 * Migration 9: indexes for the admin API's listing filters, as SQLite's migration 9 (same
 * names, same columns; see there for why each exists). The error code is read from the `error`
 * JSON text by an expression that cannot fail (see `POSTGRES_ERROR_CODE` in list-sql.ts, which
 * the listing query uses and which must stay this exact text): the escapes PostgreSQL refuses
 * (`\u0000`, lone surrogates) are dropped before the text is read as `json`, else a handler's
 * error message holding one would fail its invocation's write.
 *
 * Built inside the migration's transaction (CREATE INDEX CONCURRENTLY cannot run in one), so on
 * a large existing table writes wait for the build once, at the upgrade.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
CREATE INDEX invocations_finished ON ${s}.invocations (status, seq)
  WHERE status IN ('completed', 'failed');
CREATE INDEX invocations_service ON ${s}.invocations (service, seq);
CREATE INDEX invocations_handler ON ${s}.invocations (service, handler, seq);
CREATE INDEX invocations_key ON ${s}.invocations (key, seq);
CREATE INDEX invocations_error ON ${s}.invocations (
  (regexp_replace(error, '(\\\\[^u]|\\\\u(?![dD][89a-fA-F]|0000)[0-9a-fA-F]{4})|\\\\u[0-9a-fA-F]{4}', '\\1', 'g')::json ->> 'code'),
  seq
) WHERE error IS NOT NULL;
CREATE INDEX invocations_created ON ${s}.invocations (created_at, seq);
`;
