/**
 * Migration 15: a flow-control queue's per-key rows (`queue_keys`) no longer outlive their use,
 * as in SQLite's migration 15 (see `src/store/queue-plan.ts`): a row is kept while items wait
 * under its key or its start log holds starts a per-key rate may still count.
 *
 * - `queue_keys_idle`: the idle rows (nothing waiting) of a queue in turn order; the idle rows
 *   without a start log that earlier versions kept are deleted.
 * - `qp` (`queue.put`): a key that had nothing waiting (a new row, or an idle one) joins at the
 *   queue's current turn, the back of the round, instead of turn 0 (a deleted row must not come
 *   back ahead of the keys it was behind).
 * - `queue_admit_now` (the fast path): without a per-key rate, the key's row is not kept (the
 *   row that may be there idle is deleted); with one it is stamped as before. Then up to 4 idle
 *   rows served longest ago whose newest start left the per-key rate's window are deleted.
 *
 * Race-free with concurrent puts of the same key: every delete requires `waiting = 0`, which
 * PostgreSQL checks again on the row a concurrent put updated (the delete waits for its lock),
 * and a put whose row was deleted meanwhile inserts it again (`INSERT … ON CONFLICT`).
 *
 * As migrations 4 to 14 did, the current `apply_op` is renamed (`apply_op_v14`) and a new one
 * handles `qp` and hands every other op to it; `queue_admit_now` is replaced in place.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
CREATE INDEX queue_keys_idle ON ${s}.queue_keys (queue, turn, qkey) WHERE waiting = 0;
DELETE FROM ${s}.queue_keys WHERE waiting = 0 AND starts = '[]';

CREATE OR REPLACE FUNCTION ${s}.queue_admit_now(
  p_id text, p_queue text, p_key text, p_priority integer, p_seq bigint, p_adm jsonb
) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
  v_now bigint := (p_adm ->> 'now')::bigint;
  v_turn bigint;
  v_qstarts jsonb;
  v_kstarts jsonb := '[]'::jsonb;
  v_n bigint;
  v_full boolean;
  v_pass integer;
BEGIN
  INSERT INTO ${s}.queues (queue, turn, starts) VALUES (p_queue, 0, '[]') ON CONFLICT DO NOTHING;
  SELECT q.turn, q.starts::jsonb INTO v_turn, v_qstarts FROM ${s}.queues AS q
  WHERE q.queue = p_queue FOR UPDATE;
  PERFORM 1 FROM ${s}.queue_keys AS k WHERE k.queue = p_queue AND k.waiting > 0 LIMIT 1;
  IF FOUND THEN RETURN false; END IF;
  -- Admitted items include finished ones not forgotten yet: below the limits with them, the
  -- queue is below them for sure; only at a limit are they forgotten and counted again.
  FOR v_pass IN 1..2 LOOP
    v_full := false;
    IF p_adm ? 'concurrency' THEN
      SELECT count(*) INTO v_n FROM ${s}.queue_items AS qi WHERE qi.queue = p_queue AND qi.admitted;
      v_full := v_n >= (p_adm ->> 'concurrency')::bigint;
    END IF;
    IF NOT v_full AND p_adm ? 'keyConcurrency' THEN
      SELECT count(*) INTO v_n FROM ${s}.queue_items AS qi
      WHERE qi.queue = p_queue AND qi.qkey = p_key AND qi.admitted;
      v_full := v_n >= (p_adm ->> 'keyConcurrency')::bigint;
    END IF;
    EXIT WHEN NOT v_full;
    IF v_pass = 2 THEN RETURN false; END IF;
    DELETE FROM ${s}.queue_items AS qi WHERE qi.queue = p_queue AND qi.admitted AND NOT EXISTS (
      SELECT 1 FROM ${s}.invocations AS i
      WHERE i.id = qi.invocation_id AND i.status NOT IN ('completed', 'failed'));
  END LOOP;
  IF p_adm ? 'rate' THEN
    SELECT coalesce(jsonb_agg(e ORDER BY (e #>> '{}')::bigint), '[]'::jsonb) INTO v_qstarts
    FROM jsonb_array_elements(v_qstarts) AS e
    WHERE (e #>> '{}')::bigint > v_now - (p_adm #>> '{rate,periodMs}')::bigint;
    IF jsonb_array_length(v_qstarts) >= (p_adm #>> '{rate,limit}')::integer THEN RETURN false; END IF;
  ELSE
    v_qstarts := '[]'::jsonb;
  END IF;
  IF p_adm ? 'keyRate' THEN
    SELECT coalesce(jsonb_agg(e ORDER BY (e #>> '{}')::bigint), '[]'::jsonb) INTO v_kstarts
    FROM ${s}.queue_keys AS k, jsonb_array_elements(k.starts::jsonb) AS e
    WHERE k.queue = p_queue AND k.qkey = p_key
      AND (e #>> '{}')::bigint > v_now - (p_adm #>> '{keyRate,periodMs}')::bigint;
    IF jsonb_array_length(v_kstarts) >= (p_adm #>> '{keyRate,limit}')::integer THEN RETURN false; END IF;
  END IF;
  UPDATE ${s}.invocations AS t SET status = 'running', owner = p_adm ->> 'owner', modified_at = v_now
  WHERE t.id = p_id AND t.status = 'queued';
  IF NOT FOUND THEN RETURN false; END IF;
  INSERT INTO ${s}.queue_items (invocation_id, queue, qkey, priority, n, admitted)
  VALUES (p_id, p_queue, p_key, p_priority, p_seq, true);
  IF p_adm ? 'rate' THEN v_qstarts := v_qstarts || to_jsonb(v_now); END IF;
  v_turn := v_turn + 1;
  IF p_adm ? 'keyRate' THEN
    v_kstarts := v_kstarts || to_jsonb(v_now);
    INSERT INTO ${s}.queue_keys (queue, qkey, waiting, turn, starts)
    VALUES (p_queue, p_key, 0, v_turn, v_kstarts::text)
    ON CONFLICT (queue, qkey) DO UPDATE SET turn = excluded.turn, starts = excluded.starts;
  ELSE
    -- Nothing waits under the key and no rate counts its starts: no row to keep.
    DELETE FROM ${s}.queue_keys AS k WHERE k.queue = p_queue AND k.qkey = p_key AND k.waiting = 0;
  END IF;
  UPDATE ${s}.queues AS q SET turn = v_turn, starts = v_qstarts::text WHERE q.queue = p_queue;
  -- The idle rows served longest ago that no per-key rate counts any more (a key's turn and
  -- start log are written together, so the oldest turns hold the oldest starts).
  DELETE FROM ${s}.queue_keys AS k
  WHERE k.queue = p_queue AND k.waiting = 0
    AND k.qkey IN (SELECT i.qkey FROM ${s}.queue_keys AS i WHERE i.queue = p_queue AND i.waiting = 0
                   ORDER BY i.turn, i.qkey LIMIT 4)
    AND coalesce((k.starts::jsonb ->> -1)::bigint, 0)
        <= v_now - coalesce((p_adm #>> '{keyRate,periodMs}')::bigint, 0);
  RETURN true;
END
$fn$;

ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v14;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_seq bigint;
BEGIN
  IF v_op ->> 0 = 'qp' THEN
    SELECT t.seq INTO v_seq FROM ${s}.invocations AS t
    WHERE t.id = v_op ->> 1 AND t.status = 'queued';
    IF NOT FOUND THEN RETURN 'false'::jsonb; END IF;
    IF jsonb_typeof(v_op -> 5) = 'object' AND ${s}.queue_admit_now(
      v_op ->> 1, v_op ->> 2, v_op ->> 3, (v_op ->> 4)::integer, v_seq, v_op -> 5
    ) THEN
      RETURN 'true'::jsonb;
    END IF;
    INSERT INTO ${s}.queue_items (invocation_id, queue, qkey, priority, n)
    VALUES (v_op ->> 1, v_op ->> 2, v_op ->> 3, (v_op ->> 4)::integer, v_seq)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
      INSERT INTO ${s}.queue_keys AS k (queue, qkey, waiting, turn)
      VALUES (v_op ->> 2, v_op ->> 3, 1,
              coalesce((SELECT q.turn FROM ${s}.queues AS q WHERE q.queue = v_op ->> 2), 0))
      ON CONFLICT (queue, qkey) DO UPDATE SET
        waiting = k.waiting + 1,
        turn = CASE WHEN k.waiting = 0 THEN greatest(k.turn, excluded.turn) ELSE k.turn END;
    END IF;
    RETURN 'false'::jsonb;
  END IF;
  RETURN ${s}.apply_op_v14(v_op);
END
$fn$;
`;
