/**
 * Migration 11: an object key handed to an invocation starts it (`running`) in the same op.
 *
 * Until now a hand-off (`kr`: the holder's finishing write gives the key to the oldest pending
 * invocation) and a late acquire (`ka`) only set the owner and left the row `pending`; the
 * process it was handed to marked it `running` with its first commit. Meanwhile the row said
 * "not started" while it ran: an operator's cancel (or a caller's, propagated) read `pending`,
 * ended it in a write that expected `pending`, which held, and released the key it now held to
 * the next invocation, while the first one still ran: two invocations inside one key (found by
 * the PostgreSQL torture run, reproduced with two processes cancelling queued calls). Now the
 * store's row tells the truth: a pending-only decision (cancel, pause) finds it changed and
 * decides again on a running invocation.
 *
 * As migrations 4 to 10 did, the current `apply_op` is renamed (`apply_op_v10`) and a new one
 * wraps `kr` and `ka`:
 * - `kr`: when the release handed the key on (its result is the next row), that row goes from
 *   `pending` to `running`, and the result says so.
 * - `ka`: when the acquire holds the key and the invocation was waiting (`pending` or
 *   `scheduled`), it goes to `running`, and the result gains a third element `true`
 *   ("started"): the caller launches it, and only then (an acquire repeated for an invocation
 *   already running starts nothing).
 * `modified_at` is left as it was: the op carries no time, and nothing decides by the
 * `modified_at` of a running row.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v10;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_res jsonb;
BEGIN
  v_res := ${s}.apply_op_v10(v_op);
  CASE v_op ->> 0
  WHEN 'kr' THEN
    IF jsonb_typeof(v_res) = 'object' AND v_res ? 'id' THEN
      UPDATE ${s}.invocations AS t SET status = 'running'
      WHERE t.id = v_res ->> 'id' AND t.status = 'pending';
      v_res := jsonb_set(v_res, '{status}', '"running"');
    END IF;
  WHEN 'ka' THEN
    IF (v_res ->> 0)::boolean THEN
      UPDATE ${s}.invocations AS t SET status = 'running'
      WHERE t.id = v_op ->> 3 AND t.status IN ('pending', 'scheduled');
      IF FOUND THEN
        v_res := v_res || '[true]'::jsonb;
      END IF;
    END IF;
  ELSE
    NULL;
  END CASE;
  RETURN v_res;
END
$fn$;
`;
