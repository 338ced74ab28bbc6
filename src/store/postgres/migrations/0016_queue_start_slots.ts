/**
 * Migration 16: a flow-control queue's start logs (`queues.starts`, `queue_keys.starts`) become
 * sliding-window slots `[first, last, count]` instead of the last `limit` start times, as in
 * SQLite's migration 16 (see `src/core/sliding-window.ts`, `src/store/queue-plan.ts`): an
 * admission reads and writes O(1) bytes per start instead of O(limit).
 *
 * - A stored log of start times becomes one slot per distinct time (`[t, t, n]`, oldest first):
 *   exactly the starts it counted. Such a log may hold up to `limit` slots; they leave within one
 *   period and later starts join the newest slot, so every log is small one period later.
 * - `queue_live_starts(slots, now, periodMs)`: the slots whose last start is still in the window
 *   (a start time of the previous form is read as a slot of one, as `parseStartLog` does).
 * - `queue_record_start(slots, now, periodMs)`: one more start at `now`, by the rule of
 *   `recordEvent` with 10 slots per window (`RATE_SLOTS`): it joins the newest slot while
 *   `(now - first) * 10 < periodMs`, else opens a new one.
 * - `queue_admit_now` (the fast path) is replaced in place: the same as migration 15's but with
 *   these slots, so it applies exactly the rule of the TypeScript plan.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
UPDATE ${s}.queues AS q SET starts = (
  SELECT jsonb_agg(jsonb_build_array(g.t, g.t, g.n) ORDER BY g.t)::text
  FROM (SELECT (e #>> '{}')::numeric AS t, count(*) AS n
        FROM jsonb_array_elements(q.starts::jsonb) AS e GROUP BY 1) AS g
) WHERE jsonb_typeof(q.starts::jsonb -> 0) = 'number';
UPDATE ${s}.queue_keys AS k SET starts = (
  SELECT jsonb_agg(jsonb_build_array(g.t, g.t, g.n) ORDER BY g.t)::text
  FROM (SELECT (e #>> '{}')::numeric AS t, count(*) AS n
        FROM jsonb_array_elements(k.starts::jsonb) AS e GROUP BY 1) AS g
) WHERE jsonb_typeof(k.starts::jsonb -> 0) = 'number';

CREATE FUNCTION ${s}.queue_live_starts(p_slots jsonb, p_now bigint, p_period numeric)
RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $fn$
  SELECT coalesce(jsonb_agg(x.slot ORDER BY x.o), '[]'::jsonb)
  FROM (
    SELECT CASE WHEN jsonb_typeof(e) = 'number' THEN jsonb_build_array(e, e, 1) ELSE e END AS slot,
           CASE WHEN jsonb_typeof(e) = 'number' THEN (e #>> '{}')::numeric ELSE (e ->> 1)::numeric END AS o
    FROM jsonb_array_elements(p_slots) AS e
  ) AS x
  WHERE (x.slot ->> 1)::numeric > p_now - p_period
$fn$;

CREATE FUNCTION ${s}.queue_record_start(p_slots jsonb, p_now bigint, p_period numeric)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
  v_newest jsonb := p_slots -> -1;
BEGIN
  IF v_newest IS NOT NULL AND (p_now - (v_newest ->> 0)::numeric) * 10 < p_period THEN
    RETURN jsonb_set(p_slots, '{-1}', jsonb_build_array(
      v_newest -> 0, greatest((v_newest ->> 1)::numeric, p_now), (v_newest ->> 2)::bigint + 1));
  END IF;
  RETURN p_slots || jsonb_build_array(jsonb_build_array(p_now, p_now, 1));
END
$fn$;

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
  -- The rates: the live slots (see queue_live_starts) must count fewer starts than the limit.
  IF p_adm ? 'rate' THEN
    v_qstarts := ${s}.queue_live_starts(v_qstarts, v_now, (p_adm #>> '{rate,periodMs}')::numeric);
    SELECT coalesce(sum((e ->> 2)::bigint), 0) INTO v_n FROM jsonb_array_elements(v_qstarts) AS e;
    IF v_n >= (p_adm #>> '{rate,limit}')::bigint THEN RETURN false; END IF;
  ELSE
    v_qstarts := '[]'::jsonb;
  END IF;
  IF p_adm ? 'keyRate' THEN
    SELECT k.starts::jsonb INTO v_kstarts FROM ${s}.queue_keys AS k
    WHERE k.queue = p_queue AND k.qkey = p_key;
    v_kstarts := ${s}.queue_live_starts(
      coalesce(v_kstarts, '[]'::jsonb), v_now, (p_adm #>> '{keyRate,periodMs}')::numeric);
    SELECT coalesce(sum((e ->> 2)::bigint), 0) INTO v_n FROM jsonb_array_elements(v_kstarts) AS e;
    IF v_n >= (p_adm #>> '{keyRate,limit}')::bigint THEN RETURN false; END IF;
  END IF;
  UPDATE ${s}.invocations AS t SET status = 'running', owner = p_adm ->> 'owner', modified_at = v_now
  WHERE t.id = p_id AND t.status = 'queued';
  IF NOT FOUND THEN RETURN false; END IF;
  INSERT INTO ${s}.queue_items (invocation_id, queue, qkey, priority, n, admitted)
  VALUES (p_id, p_queue, p_key, p_priority, p_seq, true);
  IF p_adm ? 'rate' THEN
    v_qstarts := ${s}.queue_record_start(v_qstarts, v_now, (p_adm #>> '{rate,periodMs}')::numeric);
  END IF;
  v_turn := v_turn + 1;
  IF p_adm ? 'keyRate' THEN
    v_kstarts := ${s}.queue_record_start(
      v_kstarts, v_now, (p_adm #>> '{keyRate,periodMs}')::numeric);
    INSERT INTO ${s}.queue_keys (queue, qkey, waiting, turn, starts)
    VALUES (p_queue, p_key, 0, v_turn, v_kstarts::text)
    ON CONFLICT (queue, qkey) DO UPDATE SET turn = excluded.turn, starts = excluded.starts;
  ELSE
    -- Nothing waits under the key and no rate counts its starts: no row to keep.
    DELETE FROM ${s}.queue_keys AS k WHERE k.queue = p_queue AND k.qkey = p_key AND k.waiting = 0;
  END IF;
  UPDATE ${s}.queues AS q SET turn = v_turn, starts = v_qstarts::text WHERE q.queue = p_queue;
  -- The idle rows served longest ago that no per-key rate counts any more (a key's turn and
  -- start log are written together, so the oldest turns hold the oldest starts). The newest
  -- start is the last of the newest slot, or a start time of the previous form.
  DELETE FROM ${s}.queue_keys AS k
  WHERE k.queue = p_queue AND k.waiting = 0
    AND k.qkey IN (SELECT i.qkey FROM ${s}.queue_keys AS i WHERE i.queue = p_queue AND i.waiting = 0
                   ORDER BY i.turn, i.qkey LIMIT 4)
    AND coalesce(k.starts::jsonb -> -1 ->> 1, k.starts::jsonb ->> -1, '0')::numeric
        <= v_now - coalesce((p_adm #>> '{keyRate,periodMs}')::numeric, 0);
  RETURN true;
END
$fn$;
`;
