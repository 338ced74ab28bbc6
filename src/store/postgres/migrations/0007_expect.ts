/**
 * Migration 7: `invocation.expect`, code `ie` [ie, id, statuses]: a precondition that fails its
 * whole `write()` call unless the invocation exists with one of the statuses; and heartbeats
 * that never shorten a lease.
 *
 * An operator's cancel of an invocation that had not started finished it unconditionally: when
 * another process started it meanwhile, its row was marked cancelled and its object key released
 * while that process ran it (a second invocation then entered the key), and the run's own finish
 * overwrote the cancellation later. A kill likewise overwrote an outcome recorded meanwhile, and
 * a cancel that wakes a suspended invocation could set a finished one `running` again. Each now
 * puts `ie` first in its write.
 *
 * The row is locked `FOR UPDATE`, so the check and the ops after it serialize with a concurrent
 * change of the row (under READ COMMITTED the lock waits for it and reads its result). When the
 * check fails it raises SQLSTATE `KL003`; `apply` rolls the call back alone (the other calls of
 * the batch commit) and the store reports it as `precondition_failed`.
 *
 * ## `ph` (process.heartbeat): a lease never shrinks
 *
 * A heartbeat set `lease_until` to its value. A batch whose connection broke can still be run
 * by its backend later (it was blocked on a lock when the client gave up and went on through
 * another connection): an older renewal then committed after a newer one and shortened the
 * lease, while the process counted on the newer one, so it could be reaped while it ran steps
 * it believed it still owned. Now `lease_until` only grows.
 *
 * As migrations 4 to 6 did, the current `apply_op` is renamed (`apply_op_v6`) and a new one
 * handles the new code and hands every other one to it.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v6;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_status text;
BEGIN
  IF v_op ->> 0 = 'ie' THEN
    SELECT t.status INTO v_status FROM ${s}.invocations AS t WHERE t.id = v_op ->> 1 FOR UPDATE;
    IF v_status IS NULL OR NOT (v_op -> 2) ? v_status THEN
      RAISE EXCEPTION USING ERRCODE = 'KL003', MESSAGE = format(
        'invocation %s is %s, not %s: it changed meanwhile, and none of the write was applied. Read it again.',
        v_op ->> 1, coalesce(v_status, 'gone'),
        (SELECT string_agg(x, ' or ') FROM jsonb_array_elements_text(v_op -> 2) AS x));
    END IF;
    RETURN NULL;
  END IF;
  IF v_op ->> 0 = 'ph' THEN
    UPDATE ${s}.processes AS p SET lease_until = greatest(p.lease_until, (v_op ->> 2)::bigint)
    WHERE p.id = v_op ->> 1;
    RETURN to_jsonb(FOUND);
  END IF;
  RETURN ${s}.apply_op_v6(v_op);
END
$fn$;
`;
