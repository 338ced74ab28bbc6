/**
 * Migration 10: a completion keeps the waiting entry's `startedAt`.
 *
 * Journal entries carry timing fields in their `data` JSON (`startedAt`, `durationMs`,
 * `attempts`, `completedAt`, `completedBy`: see `JournalEntry`); no column changes. A wait
 * (sleep, call, awakeable, promise) records `startedAt` when it starts, but what completes it
 * (a timer, a callee's outcome, a cancellation, often in another process) does not know it,
 * and `journal.complete` (`c`) replaces the entry's data with the completion's.
 *
 * As migrations 4 to 8 did, the current `apply_op` is renamed (`apply_op_v9`) and a new one
 * handles `c` and hands every op to it: when the completion's data (element 6, JSON text or
 * null) holds no `startedAt` and the entry it completes is stored and not done, the stored
 * `startedAt` is spliced in front of the completion's data as text. The data is never cast to
 * `jsonb` and back (that reorders the keys of the user's value); adapters always write
 * `startedAt` as the first key of `data` (see `withStartedAt` in store/json.ts), so it is
 * found, and read, at the start of the text without decoding it, and only whole numbers of
 * milliseconds are carried. A stored entry without one (recorded by an older version) is left
 * as it was. One primary-key lookup per completion, which `apply_op_v3` repeats (its own
 * check that the entry is not done).
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v9;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_data text;
  v_old  text;
  v_at   text;
BEGIN
  IF v_op ->> 0 = 'c' THEN
    v_data := v_op ->> 6;
    IF v_data IS NULL OR left(v_data, 13) <> '{"startedAt":' THEN
      SELECT j.data INTO v_old FROM ${s}.journal AS j
      WHERE j.invocation_id = v_op ->> 1 AND j.idx = (v_op ->> 2)::int AND NOT j.done;
      v_at := substring(v_old FROM '^\\{"startedAt":([0-9]{1,16})[,}]');
      IF v_at IS NOT NULL THEN
        v_op := jsonb_set(v_op, '{6}', to_jsonb(
          '{"startedAt":' || v_at ||
          CASE WHEN v_data IS NULL OR v_data = '{}' THEN '}' ELSE ',' || substr(v_data, 2) END));
      END IF;
    END IF;
  END IF;
  RETURN ${s}.apply_op_v9(v_op);
END
$fn$;
`;
