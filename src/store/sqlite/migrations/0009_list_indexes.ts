/**
 * Migration 9: indexes for the admin API's listing filters (`GET /invocations?status=&service=
 * &handler=&key=&error=&since=&until=`), so each page walks an index in `seq` order and stops
 * after `limit` rows, at a million invocations as at a thousand (see src/store/list-sql.ts and
 * the `list` bench row).
 *
 * - `invocations_finished`: completed and failed ones by status; the unfinished ones already
 *   have `invocations_active`. Partial like it, so an unfinished invocation's status changes
 *   touch only one of the two.
 * - `invocations_service`, `invocations_handler`, `invocations_key`: migration 1 left them out
 *   to save a b-tree write per insert; an operator looking for one service's failures among a
 *   million rows needs them more.
 * - `invocations_error`: the error code is an expression over the `error` JSON text, not a
 *   column: the engine writes `error` in many places (failures, retries, kills, cancels), and a
 *   column would have to be kept in step by each of them; an expression index is kept by SQLite.
 *   Partial: most invocations never fail, and those cost nothing.
 * - `invocations_created`: the time range (`createdAt`), with `seq` (the rowid, implied).
 *
 * On an existing database the indexes are built once, inside the migration's transaction.
 */
export const sql = /* sql */ `
CREATE INDEX invocations_finished ON invocations (status, seq) WHERE status IN ('completed', 'failed');
CREATE INDEX invocations_service ON invocations (service, seq);
CREATE INDEX invocations_handler ON invocations (service, handler, seq);
CREATE INDEX invocations_key ON invocations (key, seq);
CREATE INDEX invocations_error ON invocations (json_extract(error, '$.code'), seq) WHERE error IS NOT NULL;
CREATE INDEX invocations_created ON invocations (created_at);
`;
