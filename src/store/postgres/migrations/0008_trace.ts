/**
 * Migration 8: `invocations.trace`, the W3C `traceparent` an invocation's spans are children of
 * (see `InvocationRow.trace`), so an attempt that resumes in another process continues the
 * invocation's trace. NULL for invocations without one.
 *
 * The insert and update statements of earlier migrations name their columns, so they do not
 * write the new one. Rather than copy them, a new code wraps one of their ops:
 * `tr` [tr, id, trace, op] applies `op` (an `i`, `ia`, `u` or `uc`) through `apply_op_v7`,
 * then sets the trace of invocation `id` (NULL clears it). A conditional update (`uc`) that did
 * not apply leaves the trace alone; an insert that met a dedupe conflict inserted no row `id`,
 * so nothing is set. The client sends `tr` only for rows and updates that carry a trace, so
 * untraced invocations keep their batched statements.
 *
 * As migrations 4 to 7 did, the current `apply_op` is renamed (`apply_op_v7`) and a new one
 * handles the new code and hands every other one to it.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER TABLE ${s}.invocations ADD COLUMN trace text;

ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v7;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_r jsonb;
BEGIN
  IF v_op ->> 0 = 'tr' THEN
    v_r := ${s}.apply_op_v7(v_op -> 3);
    IF v_op -> 3 ->> 0 = 'uc' AND v_r IS DISTINCT FROM 'true'::jsonb THEN
      RETURN v_r;
    END IF;
    UPDATE ${s}.invocations AS t SET trace = v_op ->> 2 WHERE t.id = v_op ->> 1;
    RETURN v_r;
  END IF;
  RETURN ${s}.apply_op_v7(v_op);
END
$fn$;
`;
