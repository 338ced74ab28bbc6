/**
 * Migration 2: cancellation and outcomes of invocations, durable promises of workflow keys (as
 * SQLite's migration 2), and the write function `apply` that group commit calls.
 *
 * `ADD COLUMN` of a nullable column without a default only changes the catalog: existing rows
 * are not rewritten, so this migration is instant on a large table.
 *
 * Promises and waiters mean what they mean on SQLite: a promise row with `done = false` exists
 * once something awaited it; a waiter is journal entry `idx` of `invocation_id` waiting for a
 * promise, keyed by the entry.
 *
 * ## `apply(ops, calls, plan)`: group commit in one statement
 *
 * One flush of the group commit is one call of `apply`: one statement, one transaction, one WAL
 * flush for every `write()` call queued. Values arrive encoded (JSON text inside JSON strings),
 * so the database never re-encodes them.
 *
 * Running op after op in PL/pgSQL costs 15–45 µs per op, most of it interpreter and per-statement
 * overhead. Most ops are blind writes (insert or replace a row, update some columns, delete by
 * key), so the client cuts the batch into runs of blind writes in which no row is touched twice,
 * and `apply` applies each run with one multi-row statement per kind of op: the statements of a
 * run commute, so the result is exactly that of running its ops in order, at a fraction of the
 * cost. Ops that read before they write (a journal completion, promises, a delete that cascades,
 * clearing all state of a key) run alone, in their place, through `apply_op`.
 *
 * Calls almost never fail, and a subtransaction per call costs about as much as the ops of a
 * typical call (and more than 64 of them in one transaction overflow PostgreSQL's per-backend
 * subtransaction cache, which slows every other session's snapshots). So the batch first runs
 * inside ONE subtransaction; only when something fails is it rolled back and run again call by
 * call, op by op, each call in its own subtransaction, as the SQLite store does with savepoints.
 *
 * Unlike SQLite, several processes write at once. The ops that read before they write take row
 * locks, or write conditionally, so two processes racing on the same entry or promise cannot both
 * win: a completion only overwrites an entry that is not done (checked by the upsert itself), a
 * promise completes only once (ditto), and an await locks the promise row, so a completion either
 * sees the new waiter or the await sees the completed promise.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER TABLE ${s}.invocations ADD COLUMN cancel text COLLATE "C";
ALTER TABLE ${s}.invocations ADD COLUMN outcome text;

CREATE TABLE ${s}.promises (
  service text COLLATE "C" NOT NULL,
  key     text COLLATE "C" NOT NULL,
  name    text COLLATE "C" NOT NULL,
  done    boolean NOT NULL,
  value   text,
  error   text,
  PRIMARY KEY (service, key, name)
);

CREATE TABLE ${s}.promise_waiters (
  invocation_id text COLLATE "C" NOT NULL,
  idx           integer NOT NULL,
  service       text COLLATE "C" NOT NULL,
  key           text COLLATE "C" NOT NULL,
  name          text COLLATE "C" NOT NULL,
  kind          text COLLATE "C" NOT NULL,
  entry_name    text COLLATE "C" NOT NULL,
  PRIMARY KEY (invocation_id, idx)
);

CREATE INDEX promise_waiters_promise ON ${s}.promise_waiters (service, key, name);

-- The entry's data without "value" and "error" (NULL when nothing else is left). json, not
-- jsonb: the other fields keep their text exactly.
CREATE FUNCTION ${s}.entry_strip(p_data text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT '{' || string_agg(to_json(e.key)::text || ':' || e.value::text, ',' ORDER BY e.ord) || '}'
  FROM json_each(p_data::json) WITH ORDINALITY AS e(key, value, ord)
  WHERE e.key NOT IN ('value', 'error')
$fn$;

-- The entry's data completed with a stored outcome (JSON text; NULL is undefined), spliced in
-- as it is, never decoded. p_data must hold no "value" or "error". As codec.completeEncoded.
CREATE FUNCTION ${s}.entry_complete(p_data text, p_value text, p_error text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE
    WHEN p_error IS NULL AND p_value IS NULL THEN p_data
    ELSE
      CASE WHEN p_data IS NULL OR p_data = '{}' THEN '{' ELSE left(p_data, -1) || ',' END ||
      CASE WHEN p_error IS NOT NULL THEN '"error":' || p_error ELSE '"value":' || p_value END ||
      '}'
  END
$fn$;

-- One op, on its own: its result, or NULL for ops without one. Used for the ops that read
-- before they write, and for every op of a batch that runs call by call.
CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_code    text := v_op ->> 0;
  v_res     jsonb;
  v_inv     text;
  v_idx     int;
  v_done    boolean;
  v_service text;
  v_key     text;
  v_name    text;
  v_value   text;
  v_error   text;
  v_kind    text;
  v_ename   text;
  v_data    text;
  v_waiters jsonb;
  v_w       record;
  v_e       record;
  v_p       record;
BEGIN
  CASE v_code
  -- journal.put: [j, invocationId, index, kind, name, done, data]
  WHEN 'j' THEN
    INSERT INTO ${s}.journal AS j (invocation_id, idx, kind, name, done, data)
    VALUES (v_op ->> 1, (v_op ->> 2)::int, v_op ->> 3, v_op ->> 4, (v_op ->> 5)::boolean, v_op ->> 6)
    ON CONFLICT (invocation_id, idx) DO UPDATE
      SET kind = excluded.kind, name = excluded.name, done = excluded.done, data = excluded.data;

  -- invocation.insert: [i, row (columns by name)]
  WHEN 'i' THEN
    INSERT INTO ${s}.invocations (id, service, handler, key, exclusive, status, input, output,
      error, dedupe, caller_id, caller_entry, attempt, retry_index, run_at, created_at,
      modified_at, completed_at, expires_at, cancel, outcome)
    SELECT r.id, r.service, r.handler, r.key, r.exclusive, r.status, r.input, r.output,
      r.error, r.dedupe, r.caller_id, r.caller_entry, r.attempt, r.retry_index, r.run_at,
      r.created_at, r.modified_at, r.completed_at, r.expires_at, r.cancel, r.outcome
    FROM jsonb_populate_record(NULL::${s}.invocations, v_op -> 1) AS r
    -- Only a dedupe conflict is expected and answered with the existing row; a duplicate id
    -- still raises, because that is a bug in the caller, not a race.
    ON CONFLICT (dedupe) WHERE dedupe IS NOT NULL DO NOTHING;
    IF FOUND THEN
      v_res := 'true';
    ELSE
      SELECT to_jsonb(t) INTO v_res FROM ${s}.invocations AS t WHERE t.dedupe = v_op -> 1 ->> 'dedupe';
      IF v_res IS NULL THEN
        RAISE EXCEPTION 'insert of invocation % was ignored without a dedupe conflict', v_op -> 1 ->> 'id';
      END IF;
    END IF;

  -- invocation.update: [u, id, set (columns by name; null clears)]
  WHEN 'u' THEN
    UPDATE ${s}.invocations AS t SET (service, handler, key, exclusive, status, input, output,
      error, dedupe, caller_id, caller_entry, attempt, retry_index, run_at, created_at,
      modified_at, completed_at, expires_at, cancel, outcome) = (
      SELECT r.service, r.handler, r.key, r.exclusive, r.status, r.input, r.output,
        r.error, r.dedupe, r.caller_id, r.caller_entry, r.attempt, r.retry_index, r.run_at,
        r.created_at, r.modified_at, r.completed_at, r.expires_at, r.cancel, r.outcome
      FROM jsonb_populate_record(t, v_op -> 2) AS r)
    WHERE t.id = v_op ->> 1;

  -- journal.complete: [c, invocationId, index, kind, name, done, data]
  WHEN 'c' THEN
    v_inv := v_op ->> 1;
    v_idx := (v_op ->> 2)::int;
    SELECT j.done INTO v_done FROM ${s}.journal AS j WHERE j.invocation_id = v_inv AND j.idx = v_idx;
    IF FOUND AND v_done THEN
      v_res := '[false,false]';
    ELSIF NOT FOUND AND NOT EXISTS (SELECT 1 FROM ${s}.invocations AS t WHERE t.id = v_inv) THEN
      -- The completion won the race against the entry's start: record it, unless the
      -- invocation itself is gone.
      v_res := '[false,false]';
    ELSE
      INSERT INTO ${s}.journal AS j (invocation_id, idx, kind, name, done, data)
      VALUES (v_inv, v_idx, v_op ->> 3, v_op ->> 4, (v_op ->> 5)::boolean, v_op ->> 6)
      ON CONFLICT (invocation_id, idx) DO UPDATE
        SET kind = excluded.kind, name = excluded.name, done = excluded.done, data = excluded.data
        WHERE NOT j.done;
      IF NOT FOUND THEN
        v_res := '[false,false]'; -- completed by another process meanwhile
      ELSE
        UPDATE ${s}.invocations AS t SET status = 'running' WHERE t.id = v_inv AND t.status = 'suspended';
        v_res := jsonb_build_array(true, FOUND);
      END IF;
    END IF;

  -- state.set: [s, service, key, name, value]
  WHEN 's' THEN
    INSERT INTO ${s}.state (service, key, name, value)
    VALUES (v_op ->> 1, v_op ->> 2, v_op ->> 3, v_op ->> 4)
    ON CONFLICT (service, key, name) DO UPDATE SET value = excluded.value;

  -- state.delete: [sd, service, key, name]
  WHEN 'sd' THEN
    DELETE FROM ${s}.state AS st
    WHERE st.service = v_op ->> 1 AND st.key = v_op ->> 2 AND st.name = v_op ->> 3;

  -- state.clear: [sc, service, key]
  WHEN 'sc' THEN
    DELETE FROM ${s}.state AS st WHERE st.service = v_op ->> 1 AND st.key = v_op ->> 2;

  -- timer.put: [t, invocationId, index, fireAt]
  WHEN 't' THEN
    INSERT INTO ${s}.timers (invocation_id, idx, fire_at)
    VALUES (v_op ->> 1, (v_op ->> 2)::int, (v_op ->> 3)::bigint)
    ON CONFLICT (invocation_id, idx) DO UPDATE SET fire_at = excluded.fire_at;

  -- timer.delete: [td, invocationId, index]
  WHEN 'td' THEN
    DELETE FROM ${s}.timers AS tm WHERE tm.invocation_id = v_op ->> 1 AND tm.idx = (v_op ->> 2)::int;

  -- invocation.delete: [d, id]
  WHEN 'd' THEN
    v_inv := v_op ->> 1;
    DELETE FROM ${s}.invocations AS t WHERE t.id = v_inv;
    DELETE FROM ${s}.journal AS j WHERE j.invocation_id = v_inv;
    DELETE FROM ${s}.timers AS tm WHERE tm.invocation_id = v_inv;
    DELETE FROM ${s}.promise_waiters AS w WHERE w.invocation_id = v_inv;

  -- promise.complete: [pc, service, key, name, value, error]
  WHEN 'pc' THEN
    v_service := v_op ->> 1;
    v_key := v_op ->> 2;
    v_name := v_op ->> 3;
    v_value := v_op ->> 4;
    v_error := v_op ->> 5;
    INSERT INTO ${s}.promises AS p (service, key, name, done, value, error)
    VALUES (v_service, v_key, v_name, true, v_value, v_error)
    ON CONFLICT (service, key, name) DO UPDATE
      SET done = true, value = excluded.value, error = excluded.error
      WHERE NOT p.done;
    IF NOT FOUND THEN
      v_res := '{"c":false,"w":[]}';
    ELSE
      v_waiters := '[]';
      FOR v_w IN
        SELECT w.invocation_id, w.idx, w.kind, w.entry_name FROM ${s}.promise_waiters AS w
        WHERE w.service = v_service AND w.key = v_key AND w.name = v_name
        ORDER BY w.invocation_id, w.idx
      LOOP
        SELECT j.kind, j.name, j.done, j.data INTO v_e FROM ${s}.journal AS j
        WHERE j.invocation_id = v_w.invocation_id AND j.idx = v_w.idx;
        IF FOUND THEN
          -- Completed by something else meanwhile (or replaced by a done entry): keep it.
          CONTINUE WHEN v_e.done;
          v_kind := v_e.kind;
          v_ename := v_e.name;
          v_data := ${s}.entry_strip(v_e.data);
        ELSE
          -- As journal.complete: record the completion unless the invocation itself is gone.
          CONTINUE WHEN NOT EXISTS (SELECT 1 FROM ${s}.invocations AS t WHERE t.id = v_w.invocation_id);
          v_kind := v_w.kind;
          v_ename := v_w.entry_name;
          v_data := NULL;
        END IF;
        INSERT INTO ${s}.journal AS j (invocation_id, idx, kind, name, done, data)
        VALUES (v_w.invocation_id, v_w.idx, v_kind, v_ename, true,
                ${s}.entry_complete(v_data, v_value, v_error))
        ON CONFLICT (invocation_id, idx) DO UPDATE
          SET kind = excluded.kind, name = excluded.name, done = excluded.done, data = excluded.data
          WHERE NOT j.done;
        CONTINUE WHEN NOT FOUND;
        UPDATE ${s}.invocations AS t SET status = 'running'
        WHERE t.id = v_w.invocation_id AND t.status = 'suspended';
        v_waiters := v_waiters || jsonb_build_array(jsonb_build_array(v_w.invocation_id, v_w.idx, FOUND));
      END LOOP;
      DELETE FROM ${s}.promise_waiters AS w
      WHERE w.service = v_service AND w.key = v_key AND w.name = v_name;
      v_res := jsonb_build_object('c', true, 'w', v_waiters);
    END IF;

  -- promise.await: [pa, service, key, name, invocationId, index, kind, entryName, done, data, doneData]
  -- doneData: the entry's data without value and error, to complete when the promise is done.
  WHEN 'pa' THEN
    v_service := v_op ->> 1;
    v_key := v_op ->> 2;
    v_name := v_op ->> 3;
    v_inv := v_op ->> 4;
    v_idx := (v_op ->> 5)::int;
    -- The row lock orders this await with a concurrent completion: either the completion
    -- sees the waiter recorded below, or this sees the promise completed.
    SELECT p.done, p.value, p.error INTO v_p FROM ${s}.promises AS p
    WHERE p.service = v_service AND p.key = v_key AND p.name = v_name FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO ${s}.promises (service, key, name, done) VALUES (v_service, v_key, v_name, false)
      ON CONFLICT (service, key, name) DO NOTHING;
      SELECT p.done, p.value, p.error INTO v_p FROM ${s}.promises AS p
      WHERE p.service = v_service AND p.key = v_key AND p.name = v_name FOR UPDATE;
    END IF;
    IF v_p.done THEN
      INSERT INTO ${s}.journal AS j (invocation_id, idx, kind, name, done, data)
      VALUES (v_inv, v_idx, v_op ->> 6, v_op ->> 7, true,
              ${s}.entry_complete(v_op ->> 10, v_p.value, v_p.error))
      ON CONFLICT (invocation_id, idx) DO UPDATE
        SET kind = excluded.kind, name = excluded.name, done = excluded.done, data = excluded.data;
      v_res := jsonb_build_object('v', v_p.value, 'e', v_p.error);
    ELSE
      INSERT INTO ${s}.journal AS j (invocation_id, idx, kind, name, done, data)
      VALUES (v_inv, v_idx, v_op ->> 6, v_op ->> 7, (v_op ->> 8)::boolean, v_op ->> 9)
      ON CONFLICT (invocation_id, idx) DO UPDATE
        SET kind = excluded.kind, name = excluded.name, done = excluded.done, data = excluded.data;
      INSERT INTO ${s}.promise_waiters AS w (invocation_id, idx, service, key, name, kind, entry_name)
      VALUES (v_inv, v_idx, v_service, v_key, v_name, v_op ->> 6, v_op ->> 7)
      ON CONFLICT (invocation_id, idx) DO UPDATE
        SET service = excluded.service, key = excluded.key, name = excluded.name,
            kind = excluded.kind, entry_name = excluded.entry_name;
      v_res := 'false';
    END IF;

  ELSE
    RAISE EXCEPTION 'unknown write op code %', v_code;
  END CASE;
    RETURN v_res;
END
$fn$;

-- Every write() call queued, as one statement (see the comment of this migration).
--   p_ops:   every op of every call, in order, as tuples [code, ...args] (see codec.ts)
--   p_calls: how many ops each call has, in order
--   p_plan:  triples (from, to, kinds) covering p_ops in order: kinds = 0 is the one op at
--            "from", run by apply_op; otherwise ops from..to-1 are a run of blind writes, no two
--            touching the same row, applied with one statement per kind present (bits below).
-- Returns [results, failures]: results holds [op index, result] for every op with a result
-- (an insert without one inserted); failures holds [call index, message, detail, sqlstate].
CREATE FUNCTION ${s}.apply(p_ops jsonb, p_calls int[], p_plan int[]) RETURNS jsonb
LANGUAGE plpgsql
-- Plan every statement once per connection (a custom plan per batch costs more than running
-- it), and since a generic plan cannot know how few ops a run has, never with a hash or merge
-- join: the statements join a handful of ops to big tables, always by index. apply_op runs
-- under the same settings.
SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
DECLARE
  v_res     jsonb[] := '{}';
  v_call    jsonb[];
  v_fail    jsonb[] := '{}';
  v_from    int;
  v_to      int;
  v_kinds   int;
  v_r       jsonb;
  v_skipped int[];
  v_found   jsonb[];
  v_stale   boolean;
  v_first   int;
  v_detail  text;
BEGIN
  BEGIN
    FOR v_k IN 0 .. coalesce(array_length(p_plan, 1), 0) / 3 - 1 LOOP
      v_from := p_plan[v_k * 3 + 1];
      v_to := p_plan[v_k * 3 + 2];
      v_kinds := p_plan[v_k * 3 + 3];
      IF v_kinds = 0 THEN
        v_r := ${s}.apply_op(p_ops -> v_from);
        IF v_r IS NOT NULL THEN
          v_res := array_append(v_res, jsonb_build_array(v_from, v_r));
        END IF;
        CONTINUE;
      END IF;

      -- 1: invocation.insert [i, row]
      IF v_kinds & 1 <> 0 THEN
        WITH src AS (
          SELECT g, p_ops -> g -> 1 AS r FROM generate_series(v_from, v_to - 1) AS g
          WHERE p_ops -> g ->> 0 = 'i'
        ), ins AS (
          INSERT INTO ${s}.invocations (id, service, handler, key, exclusive, status, input,
            output, error, dedupe, caller_id, caller_entry, attempt, retry_index, run_at,
            created_at, modified_at, completed_at, expires_at, cancel, outcome)
          SELECT x.id, x.service, x.handler, x.key, x.exclusive, x.status, x.input,
            x.output, x.error, x.dedupe, x.caller_id, x.caller_entry, x.attempt, x.retry_index,
            x.run_at, x.created_at, x.modified_at, x.completed_at, x.expires_at, x.cancel,
            x.outcome
          FROM src CROSS JOIN LATERAL jsonb_populate_record(NULL::${s}.invocations, src.r) AS x
          ORDER BY src.g -- seq follows the order of the ops
          ON CONFLICT (dedupe) WHERE dedupe IS NOT NULL DO NOTHING
          RETURNING id
        )
        SELECT array_agg(src.g) INTO v_skipped FROM src
        WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.id = src.r ->> 'id');
        IF v_skipped IS NOT NULL THEN
          -- Answered with the invocation holding the dedupe key. If an update of this run
          -- changes that invocation, its answer would depend on the order of the statements:
          -- run the batch op by op instead (never seen in practice).
          SELECT array_agg(jsonb_build_array(k.g, to_jsonb(t))),
                 bool_or(t.id IS NULL OR EXISTS (
                   SELECT 1 FROM generate_series(v_from, v_to - 1) AS u
                   WHERE p_ops -> u ->> 0 = 'u' AND p_ops -> u ->> 1 = t.id))
          INTO v_found, v_stale
          FROM unnest(v_skipped) AS k(g)
          LEFT JOIN ${s}.invocations AS t ON t.dedupe = p_ops -> k.g -> 1 ->> 'dedupe';
          IF v_stale THEN
            RAISE EXCEPTION USING ERRCODE = 'KL001', MESSAGE = 'run the batch op by op';
          END IF;
          v_res := v_res || v_found;
        END IF;
      END IF;

      -- 2: invocation.update [u, id, set]: a column named in "set" is set (null clears it).
      IF v_kinds & 2 <> 0 THEN
        UPDATE ${s}.invocations AS t SET
          service = CASE WHEN u.s ? 'service' THEN u.s ->> 'service' ELSE t.service END,
          handler = CASE WHEN u.s ? 'handler' THEN u.s ->> 'handler' ELSE t.handler END,
          key = CASE WHEN u.s ? 'key' THEN u.s ->> 'key' ELSE t.key END,
          exclusive = CASE WHEN u.s ? 'exclusive' THEN (u.s ->> 'exclusive')::boolean ELSE t.exclusive END,
          status = CASE WHEN u.s ? 'status' THEN u.s ->> 'status' ELSE t.status END,
          input = CASE WHEN u.s ? 'input' THEN u.s ->> 'input' ELSE t.input END,
          output = CASE WHEN u.s ? 'output' THEN u.s ->> 'output' ELSE t.output END,
          error = CASE WHEN u.s ? 'error' THEN u.s ->> 'error' ELSE t.error END,
          dedupe = CASE WHEN u.s ? 'dedupe' THEN u.s ->> 'dedupe' ELSE t.dedupe END,
          caller_id = CASE WHEN u.s ? 'caller_id' THEN u.s ->> 'caller_id' ELSE t.caller_id END,
          caller_entry = CASE WHEN u.s ? 'caller_entry' THEN (u.s ->> 'caller_entry')::int ELSE t.caller_entry END,
          attempt = CASE WHEN u.s ? 'attempt' THEN (u.s ->> 'attempt')::int ELSE t.attempt END,
          retry_index = CASE WHEN u.s ? 'retry_index' THEN (u.s ->> 'retry_index')::int ELSE t.retry_index END,
          run_at = CASE WHEN u.s ? 'run_at' THEN (u.s ->> 'run_at')::bigint ELSE t.run_at END,
          created_at = CASE WHEN u.s ? 'created_at' THEN (u.s ->> 'created_at')::bigint ELSE t.created_at END,
          modified_at = CASE WHEN u.s ? 'modified_at' THEN (u.s ->> 'modified_at')::bigint ELSE t.modified_at END,
          completed_at = CASE WHEN u.s ? 'completed_at' THEN (u.s ->> 'completed_at')::bigint ELSE t.completed_at END,
          expires_at = CASE WHEN u.s ? 'expires_at' THEN (u.s ->> 'expires_at')::bigint ELSE t.expires_at END,
          cancel = CASE WHEN u.s ? 'cancel' THEN u.s ->> 'cancel' ELSE t.cancel END,
          outcome = CASE WHEN u.s ? 'outcome' THEN u.s ->> 'outcome' ELSE t.outcome END
        FROM (
          SELECT p_ops -> g ->> 1 AS id, p_ops -> g -> 2 AS s
          FROM generate_series(v_from, v_to - 1) AS g WHERE p_ops -> g ->> 0 = 'u'
        ) AS u
        WHERE t.id = u.id;
      END IF;

      -- 4: journal.put [j, invocationId, index, kind, name, done, data]
      IF v_kinds & 4 <> 0 THEN
        INSERT INTO ${s}.journal AS j (invocation_id, idx, kind, name, done, data)
        SELECT o ->> 1, (o ->> 2)::int, o ->> 3, o ->> 4, (o ->> 5)::boolean, o ->> 6
        FROM (SELECT p_ops -> g AS o FROM generate_series(v_from, v_to - 1) AS g) AS x
        WHERE o ->> 0 = 'j'
        ON CONFLICT (invocation_id, idx) DO UPDATE
          SET kind = excluded.kind, name = excluded.name, done = excluded.done, data = excluded.data;
      END IF;

      -- 8: state.set [s, service, key, name, value]
      IF v_kinds & 8 <> 0 THEN
        INSERT INTO ${s}.state (service, key, name, value)
        SELECT o ->> 1, o ->> 2, o ->> 3, o ->> 4
        FROM (SELECT p_ops -> g AS o FROM generate_series(v_from, v_to - 1) AS g) AS x
        WHERE o ->> 0 = 's'
        ON CONFLICT (service, key, name) DO UPDATE SET value = excluded.value;
      END IF;

      -- 16: state.delete [sd, service, key, name]
      IF v_kinds & 16 <> 0 THEN
        DELETE FROM ${s}.state AS st
        USING (SELECT p_ops -> g AS o FROM generate_series(v_from, v_to - 1) AS g) AS x
        WHERE x.o ->> 0 = 'sd' AND st.service = x.o ->> 1 AND st.key = x.o ->> 2
          AND st.name = x.o ->> 3;
      END IF;

      -- 32: timer.put [t, invocationId, index, fireAt]
      IF v_kinds & 32 <> 0 THEN
        INSERT INTO ${s}.timers (invocation_id, idx, fire_at)
        SELECT o ->> 1, (o ->> 2)::int, (o ->> 3)::bigint
        FROM (SELECT p_ops -> g AS o FROM generate_series(v_from, v_to - 1) AS g) AS x
        WHERE o ->> 0 = 't'
        ON CONFLICT (invocation_id, idx) DO UPDATE SET fire_at = excluded.fire_at;
      END IF;

      -- 64: timer.delete [td, invocationId, index]
      IF v_kinds & 64 <> 0 THEN
        DELETE FROM ${s}.timers AS tm
        USING (SELECT p_ops -> g AS o FROM generate_series(v_from, v_to - 1) AS g) AS x
        WHERE x.o ->> 0 = 'td' AND tm.invocation_id = x.o ->> 1 AND tm.idx = (x.o ->> 2)::int;
      END IF;
    END LOOP;
    RETURN jsonb_build_array(to_jsonb(v_res), '[]'::jsonb);
  EXCEPTION WHEN OTHERS THEN
    IF array_length(p_calls, 1) = 1 AND SQLSTATE <> 'KL001' THEN
      GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
      RETURN jsonb_build_array('[]'::jsonb,
        jsonb_build_array(jsonb_build_array(0, SQLERRM, v_detail, SQLSTATE)));
    END IF;
  END;

  -- Everything above was rolled back: run the calls one by one, op by op, each call in its own
  -- subtransaction, so a failing call is rolled back alone.
  v_res := '{}';
  v_first := 0;
  FOR v_c IN 1 .. array_length(p_calls, 1) LOOP
    BEGIN
      v_call := '{}';
      FOR v_i IN v_first .. v_first + p_calls[v_c] - 1 LOOP
        v_r := ${s}.apply_op(p_ops -> v_i);
        IF v_r IS NOT NULL THEN
          v_call := array_append(v_call, jsonb_build_array(v_i, v_r));
        END IF;
      END LOOP;
      v_res := v_res || v_call;
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
      v_fail := array_append(v_fail, jsonb_build_array(v_c - 1, SQLERRM, v_detail, SQLSTATE));
    END;
    v_first := v_first + p_calls[v_c];
  END LOOP;
  RETURN jsonb_build_array(to_jsonb(v_res), to_jsonb(v_fail));
END
$fn$;
`;
