/**
 * Migration 5: `invocation.update` with `ifStatus`, as code `uc` [uc, id, set, status]: the
 * update applies only while the invocation has that status, and answers whether it did.
 *
 * A fired start or retry timer makes its invocation runnable (`scheduled` → `pending`,
 * `backing-off` → `running`) in the same write that deletes the timer, so neither a crash nor
 * the key hand-off (`key.release` only looks at `pending` rows) can strand it; the status check
 * keeps that write from overwriting a cancellation committed meanwhile by any process. Under
 * READ COMMITTED the UPDATE rechecks the status on the row version it locks, so it serializes
 * with a concurrent finish of the same row.
 *
 * As migration 4 did, the current `apply_op` is renamed (`apply_op_v4`) and a new one handles
 * the new code and hands every other one to it; `apply` finds `apply_op` by name.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v4;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
BEGIN
  IF v_op ->> 0 = 'uc' THEN
    UPDATE ${s}.invocations AS t SET (service, handler, key, exclusive, status, input, output,
      error, dedupe, caller_id, caller_entry, attempt, retry_index, run_at, created_at,
      modified_at, completed_at, expires_at, cancel, outcome, owner) = (
      SELECT r.service, r.handler, r.key, r.exclusive, r.status, r.input, r.output,
        r.error, r.dedupe, r.caller_id, r.caller_entry, r.attempt, r.retry_index, r.run_at,
        r.created_at, r.modified_at, r.completed_at, r.expires_at, r.cancel, r.outcome, r.owner
      FROM jsonb_populate_record(t, v_op -> 2) AS r)
    WHERE t.id = v_op ->> 1 AND t.status = v_op ->> 3;
    RETURN to_jsonb(FOUND);
  END IF;
  RETURN ${s}.apply_op_v4(v_op);
END
$fn$;
`;
