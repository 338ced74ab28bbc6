/**
 * Migration 12: flow-control queues (see `src/store/queue-plan.ts`).
 *
 * Tables as in SQLite's migration 12: `queue_items` (one row per invocation put into a queue,
 * waiting or admitted; `n` is the invocation's `seq`), `queue_keys` (per queue and key: how
 * many wait, the turn it was last served at, its start log) and `queues` (per queue: the turn
 * counter and its start log). `invocations.status` gains `queued` (plain text, no constraint).
 *
 * `queue.put` is a new op code of `apply_op`, `qp` [qp, id, queue, key, priority]: it files
 * invocation `id` if a `queued` row of that id exists (an insert that met a dedupe conflict
 * inserted none), and counts it waiting under its key. `queue.admit` is not an op of `apply`:
 * the store runs it in a transaction of its own that locks the queue's row (see the store).
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

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_seq bigint;
BEGIN
  IF v_op ->> 0 = 'qp' THEN
    SELECT t.seq INTO v_seq FROM ${s}.invocations AS t
    WHERE t.id = v_op ->> 1 AND t.status = 'queued';
    IF FOUND THEN
      INSERT INTO ${s}.queue_items (invocation_id, queue, qkey, priority, n)
      VALUES (v_op ->> 1, v_op ->> 2, v_op ->> 3, (v_op ->> 4)::integer, v_seq)
      ON CONFLICT DO NOTHING;
      IF FOUND THEN
        INSERT INTO ${s}.queue_keys (queue, qkey, waiting, turn)
        VALUES (v_op ->> 2, v_op ->> 3, 1, 0)
        ON CONFLICT (queue, qkey) DO UPDATE SET waiting = ${s}.queue_keys.waiting + 1;
      END IF;
    END IF;
    RETURN 'null'::jsonb;
  END IF;
  RETURN ${s}.apply_op_v11(v_op);
END
$fn$;
`;
