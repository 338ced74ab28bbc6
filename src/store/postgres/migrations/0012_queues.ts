/**
 * Migration 12: flow-control queues (see `src/store/queue-plan.ts`).
 *
 * Tables as in SQLite's migration 12: `queue_items` (one row per invocation put into a queue,
 * waiting or admitted; `n` is the invocation's `seq`), `queue_keys` (per queue and key: how
 * many wait, the turn it was last served at, its start log) and `queues` (per queue: the turn
 * counter and its start log). `invocations.status` gains `queued` (plain text, no constraint).
 *
 * `queue.put` is a new op code of `apply_op`, `qp` [qp, id, queue, key, priority, admit]: it
 * files invocation `id` if a `queued` row of that id exists (an insert that met a dedupe
 * conflict inserted none), and counts it waiting under its key. With `admit` (the limits, `now`
 * and `owner`: the fast path of a queue that is not full) it first locks the queue's row, as an
 * admission does, and when nothing waits in the queue and every limit allows one more start, it
 * admits the invocation at once (`running`, the item admitted, the turn and start logs stamped)
 * and answers true. `queue.admit` is not an op of `apply`: the store runs it in a transaction of
 * its own that locks the queue's row (see the store).
 *
 * As migrations 4 to 11 did, the current `apply_op` is renamed (`apply_op_v11`) and a new one
 * handles the new code and hands every other one to it.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
CREATE TABLE ${s}.queue_items (
  invocation_id text COLLATE "C" NOT NULL PRIMARY KEY,
  queue         text COLLATE "C" NOT NULL,
  qkey          text COLLATE "C" NOT NULL,
  priority      integer NOT NULL,
  n             bigint NOT NULL,
  admitted      boolean NOT NULL DEFAULT false
);
CREATE INDEX queue_items_waiting ON ${s}.queue_items (queue, qkey, priority DESC, n) WHERE NOT admitted;
CREATE INDEX queue_items_admitted ON ${s}.queue_items (queue, qkey) WHERE admitted;

CREATE TABLE ${s}.queue_keys (
  queue   text COLLATE "C" NOT NULL,
  qkey    text COLLATE "C" NOT NULL,
  waiting integer NOT NULL,
  turn    bigint NOT NULL,
  starts  text NOT NULL DEFAULT '[]',
  PRIMARY KEY (queue, qkey)
);
CREATE INDEX queue_keys_turn ON ${s}.queue_keys (queue, turn, qkey) WHERE waiting > 0;

CREATE TABLE ${s}.queues (
  queue  text COLLATE "C" NOT NULL PRIMARY KEY,
  turn   bigint NOT NULL,
  starts text NOT NULL
);

ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v11;

-- The fast path of qp: admits invocation p_id at once when nothing waits in the queue and
-- every limit of p_adm allows one more start (see queue-plan.ts for the rules).
CREATE FUNCTION ${s}.queue_admit_now(
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
  IF p_adm ? 'keyRate' THEN v_kstarts := v_kstarts || to_jsonb(v_now); END IF;
  v_turn := v_turn + 1;
  INSERT INTO ${s}.queue_keys (queue, qkey, waiting, turn, starts)
  VALUES (p_queue, p_key, 0, v_turn, v_kstarts::text)
  ON CONFLICT (queue, qkey) DO UPDATE SET turn = excluded.turn, starts = excluded.starts;
  UPDATE ${s}.queues AS q SET turn = v_turn, starts = v_qstarts::text WHERE q.queue = p_queue;
  RETURN true;
END
$fn$;

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
      INSERT INTO ${s}.queue_keys (queue, qkey, waiting, turn)
      VALUES (v_op ->> 2, v_op ->> 3, 1, 0)
      ON CONFLICT (queue, qkey) DO UPDATE SET waiting = ${s}.queue_keys.waiting + 1;
    END IF;
    RETURN 'false'::jsonb;
  END IF;
  RETURN ${s}.apply_op_v11(v_op);
END
$fn$;
`;
