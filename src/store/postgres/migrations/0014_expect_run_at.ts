/**
 * Migration 14: `ie` [ie, id, statuses, runAt] — `invocation.expect` with `runAt`: the row must
 * also run at exactly that time. A debounced invocation's start (engine/timer-firing.ts) reads
 * the row, finds its `runAt` due and starts it; a send of another process could land between
 * the read and the start, moving `runAt` later and setting its input, and so join a burst that
 * started at once, without the quiet period after it. The start now expects the `runAt` it
 * read: when a send moved it, the start fails as a whole and waits for the new time.
 *
 * As migrations 4 to 13 did, the current `apply_op` is renamed (`apply_op_v13`) and a new one
 * handles the four-element `ie` and hands every other op (the three-element `ie` included) to it.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v13;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_status text;
  v_run_at bigint;
BEGIN
  IF v_op ->> 0 = 'ie' AND jsonb_array_length(v_op) > 3 THEN
    SELECT t.status, t.run_at INTO v_status, v_run_at
      FROM ${s}.invocations AS t WHERE t.id = v_op ->> 1 FOR UPDATE;
    IF v_status IS NULL OR NOT (v_op -> 2) ? v_status THEN
      RAISE EXCEPTION USING ERRCODE = 'KL003', MESSAGE = format(
        'invocation %s is %s, not %s: it changed meanwhile, and none of the write was applied. Read it again.',
        v_op ->> 1, coalesce(v_status, 'gone'),
        (SELECT string_agg(x, ' or ') FROM jsonb_array_elements_text(v_op -> 2) AS x));
    END IF;
    IF v_run_at IS DISTINCT FROM (v_op ->> 3)::bigint THEN
      RAISE EXCEPTION USING ERRCODE = 'KL003', MESSAGE = format(
        'invocation %s runs at %s, not %s: it was moved meanwhile, and none of the write was applied. Read it again.',
        v_op ->> 1, coalesce(v_run_at::text, 'no time'), v_op ->> 3);
    END IF;
    RETURN NULL;
  END IF;
  RETURN ${s}.apply_op_v13(v_op);
END
$fn$;
`;
