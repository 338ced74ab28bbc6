/**
 * Migration 19: `process.leave` ([pl, id]) unregisters a process at once, whatever its lease.
 *
 * A cleanly stopping process wrote a heartbeat with a lease of 0 to give its lease up, but since
 * migration 7 a lease never shrinks (an old renewal committing late must not shorten it), so the
 * heartbeat did nothing and the process's invocations waited for its lease to end plus the
 * reapers' margin (about 12.5 s with the default lease) before another process adopted them.
 * Deleting the row is what a reaper does: the invocations then belong to an owner nobody
 * registered, which any process's next reap adopts, and the process's own later writes are
 * fenced as a reaped process's (migration 6).
 *
 * As migrations 4 to 18 did, the current `apply_op` is renamed (`apply_op_v18`) and a new one
 * handles the new op and hands every other op to it.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v18;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
BEGIN
  IF v_op ->> 0 <> 'pl' THEN
    RETURN ${s}.apply_op_v18(v_op);
  END IF;
  DELETE FROM ${s}.processes WHERE id = v_op ->> 1;
  RETURN NULL;
END
$fn$;
`;
