/**
 * Migration 3: several processes on one schema (as SQLite's migration 3 for the tables), and
 * `apply` / `apply_op` redefined for the new columns and ops.
 *
 * - `invocations.owner`: the process executing an invocation (NULL when no process owns it).
 *   Indexed where set and unfinished, for `listRunnable(owner)` and the reaper.
 * - `invocations_key_queue`: the pending exclusive invocations of a key in seq order, for
 *   `key.release`, which runs on every finish of an exclusive invocation in a cluster. Partial:
 *   only pending exclusive rows are indexed.
 * - `processes`: registered processes and the end of their lease (epoch ms).
 * - `key_locks`: which exclusive invocation holds an object key.
 * - `channel(process)`: the NOTIFY channel of a process, or with NULL the broadcast channel of
 *   the schema. The one definition of channel names: the store LISTENs on what it returns.
 *   `keel.<schema>` and `keel.<schema>.<process>` when that fits in an identifier (63 bytes);
 *   otherwise `keel#` and the MD5 of that name.
 *
 * ## Messages
 *
 * `pg_notify` inside the batch's transaction: PostgreSQL sends a notification only when its
 * transaction commits, drops those of a subtransaction rolled back (a call that failed alone),
 * and sends identical notifications (same channel and payload) of one transaction once.
 *
 * ## Completions and owners
 *
 * A completion reads the invocation's status and owner, and resumes it if suspended (an UPDATE
 * that rechecks the status under the row lock, and returns the owner as of then). When it did
 * not resume it and the owner is another process than the completion's `notifyFrom`, it reads
 * the owner again `FOR SHARE`. Either lock orders the completion with a reaper taking the
 * invocation over (its UPDATE of `owner` conflicts): either the completion waits and wakes the
 * new owner, or the reaper waits and its new owner then reads a journal holding the
 * completion. Without it, the completion could wake the dead owner while the new one read the
 * journal before the completion committed. A process completing entries of its own
 * invocations takes no lock. The owner is read as an extra statement only for a suspended
 * invocation (the SELECT before the UPDATE): a completion costs one statement more than
 * before migration 3 there, and the same otherwise.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => {
  // The unquoted name, for channel names (schema names never need quoting, see quoteSchema).
  const schema = s.slice(1, -1);
  return /* sql */ `
ALTER TABLE ${s}.invocations ADD COLUMN owner text COLLATE "C";

CREATE INDEX invocations_owner ON ${s}.invocations (owner, seq)
  WHERE owner IS NOT NULL AND status NOT IN ('completed', 'failed');
CREATE INDEX invocations_key_queue ON ${s}.invocations (service, key, seq)
  WHERE status = 'pending' AND exclusive;

CREATE TABLE ${s}.processes (
  id          text COLLATE "C" PRIMARY KEY,
  lease_until bigint NOT NULL
);

CREATE TABLE ${s}.key_locks (
  service       text COLLATE "C" NOT NULL,
  key           text COLLATE "C" NOT NULL,
  invocation_id text COLLATE "C" NOT NULL,
  PRIMARY KEY (service, key)
);

CREATE INDEX key_locks_invocation ON ${s}.key_locks (invocation_id);

CREATE FUNCTION ${s}.channel(p_process text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE WHEN octet_length(c.name) <= 63 THEN c.name ELSE 'keel#' || md5(c.name) END
  FROM (SELECT 'keel.${schema}' || coalesce('.' || p_process, '') AS name) AS c
$fn$;

-- One op, on its own: its result, or NULL for ops without one. Used for the ops that read
-- before they write, and for every op of a batch that runs call by call.
CREATE OR REPLACE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
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
  v_from    text;
  v_owner   text;
  v_owner2  text;
  v_status  text;
  v_resumed boolean;
  v_holder  text;
  v_next    text;
  v_dead    text[];
  v_taken   jsonb;
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
      modified_at, completed_at, expires_at, cancel, outcome, owner)
    SELECT r.id, r.service, r.handler, r.key, r.exclusive, r.status, r.input, r.output,
      r.error, r.dedupe, r.caller_id, r.caller_entry, r.attempt, r.retry_index, r.run_at,
      r.created_at, r.modified_at, r.completed_at, r.expires_at, r.cancel, r.outcome, r.owner
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
      modified_at, completed_at, expires_at, cancel, outcome, owner) = (
      SELECT r.service, r.handler, r.key, r.exclusive, r.status, r.input, r.output,
        r.error, r.dedupe, r.caller_id, r.caller_entry, r.attempt, r.retry_index, r.run_at,
        r.created_at, r.modified_at, r.completed_at, r.expires_at, r.cancel, r.outcome, r.owner
      FROM jsonb_populate_record(t, v_op -> 2) AS r)
    WHERE t.id = v_op ->> 1;

  -- journal.complete: [c, invocationId, index, kind, name, done, data, notifyFrom]
  -- Result: [completed, resumed, owner].
  WHEN 'c' THEN
    v_inv := v_op ->> 1;
    v_idx := (v_op ->> 2)::int;
    v_from := v_op ->> 7;
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
        -- Resume it if suspended (the UPDATE rechecks that under the row lock).
        SELECT t.status, t.owner INTO v_status, v_owner FROM ${s}.invocations AS t WHERE t.id = v_inv;
        v_resumed := false;
        IF v_status = 'suspended' THEN
          UPDATE ${s}.invocations AS t SET status = 'running'
          WHERE t.id = v_inv AND t.status = 'suspended'
          RETURNING t.owner INTO v_owner2;
          IF FOUND THEN
            v_resumed := true;
            v_owner := v_owner2;
          END IF;
        END IF;
        IF v_owner <> v_from AND NOT v_resumed THEN
          -- See the comment of this migration: orders the wake with a takeover.
          SELECT t.owner INTO v_owner FROM ${s}.invocations AS t WHERE t.id = v_inv FOR SHARE;
        END IF;
        -- Never with a NULL owner (unowned, or deleted meanwhile): channel(NULL) broadcasts.
        IF v_owner <> v_from THEN
          PERFORM pg_notify(${s}.channel(v_owner),
            jsonb_build_object('type', 'wake', 'invocationId', v_inv)::text);
        END IF;
        v_res := jsonb_build_array(true, v_resumed, v_owner);
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
    DELETE FROM ${s}.key_locks AS l WHERE l.invocation_id = v_inv;

  -- promise.complete: [pc, service, key, name, value, error, notifyFrom]
  -- Result: {c: completed, w: [[invocationId, index, resumed, owner], ...]}.
  WHEN 'pc' THEN
    v_from := v_op ->> 6;
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
        SELECT t.status, t.owner INTO v_status, v_owner FROM ${s}.invocations AS t
        WHERE t.id = v_w.invocation_id;
        v_resumed := false;
        IF v_status = 'suspended' THEN
          UPDATE ${s}.invocations AS t SET status = 'running'
          WHERE t.id = v_w.invocation_id AND t.status = 'suspended'
          RETURNING t.owner INTO v_owner2;
          IF FOUND THEN
            v_resumed := true;
            v_owner := v_owner2;
          END IF;
        END IF;
        IF v_owner <> v_from AND NOT v_resumed THEN
          SELECT t.owner INTO v_owner FROM ${s}.invocations AS t
          WHERE t.id = v_w.invocation_id FOR SHARE;
        END IF;
        IF v_owner <> v_from THEN
          PERFORM pg_notify(${s}.channel(v_owner),
            jsonb_build_object('type', 'wake', 'invocationId', v_w.invocation_id)::text);
        END IF;
        v_waiters := v_waiters ||
          jsonb_build_array(jsonb_build_array(v_w.invocation_id, v_w.idx, v_resumed, v_owner));
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

  -- notify: [n, message (JSON text), to (null: every process)]
  WHEN 'n' THEN
    PERFORM pg_notify(${s}.channel(v_op ->> 2), v_op ->> 1);

  -- process.register: [pr, id, leaseUntil]
  WHEN 'pr' THEN
    INSERT INTO ${s}.processes (id, lease_until) VALUES (v_op ->> 1, (v_op ->> 2)::bigint)
    ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until;

  -- process.heartbeat: [ph, id, leaseUntil]. Result: whether the process is still registered.
  WHEN 'ph' THEN
    UPDATE ${s}.processes AS p SET lease_until = (v_op ->> 2)::bigint WHERE p.id = v_op ->> 1;
    v_res := to_jsonb(FOUND);

  -- process.reap: [px, now, by]. Result: {r: reaped ids, i: ids of invocations taken over}.
  WHEN 'px' THEN
    v_from := v_op ->> 2;
    -- Each expired process is taken by one reaper: the rows another reaper (or a heartbeat)
    -- has locked are skipped, and a lease extended meanwhile is seen by the lock's recheck.
    WITH dead AS (
      DELETE FROM ${s}.processes AS p
      WHERE p.id IN (
        SELECT q.id FROM ${s}.processes AS q
        WHERE q.lease_until < (v_op ->> 1)::bigint AND q.id <> v_from
        FOR UPDATE SKIP LOCKED)
      RETURNING p.id
    )
    SELECT coalesce(array_agg(dead.id ORDER BY dead.id), '{}') INTO v_dead FROM dead;
    v_taken := '[]';
    IF cardinality(v_dead) > 0 THEN
      WITH taken AS (
        UPDATE ${s}.invocations AS t SET owner = v_from
        WHERE t.owner = ANY (v_dead) AND t.status NOT IN ('completed', 'failed')
        RETURNING t.id, t.seq
      )
      SELECT coalesce(jsonb_agg(taken.id ORDER BY taken.seq), '[]') INTO v_taken FROM taken;
    END IF;
    v_res := jsonb_build_object('r', to_jsonb(v_dead), 'i', v_taken);

  -- key.acquire: [ka, service, key, invocationId]. Result: [acquired, holder].
  WHEN 'ka' THEN
    v_inv := v_op ->> 3;
    -- On a conflict, DO UPDATE (to the same value) locks the row, which DO NOTHING would not:
    -- so an acquire that finds the key held waits for a release of it in flight, and a release
    -- waits for this transaction, then sees the invocation it queued (see 'kr').
    INSERT INTO ${s}.key_locks AS l (service, key, invocation_id)
    VALUES (v_op ->> 1, v_op ->> 2, v_inv)
    ON CONFLICT (service, key) DO UPDATE SET invocation_id = l.invocation_id
    RETURNING l.invocation_id INTO v_holder;
    v_res := jsonb_build_array(v_holder = v_inv, v_holder);

  -- key.release: [kr, service, key, invocationId, owner]. Result: the next holder's row, or {}.
  WHEN 'kr' THEN
    v_service := v_op ->> 1;
    v_key := v_op ->> 2;
    v_inv := v_op ->> 3;
    -- Locking the key's row waits for every acquire of the key in flight (they lock it too).
    SELECT l.invocation_id INTO v_holder FROM ${s}.key_locks AS l
    WHERE l.service = v_service AND l.key = v_key FOR UPDATE;
    IF NOT FOUND OR v_holder <> v_inv THEN
      v_res := '{}';
    ELSE
      -- The statements below take new snapshots (READ COMMITTED), taken after the lock was
      -- granted: they see the pending invocations of every acquire that committed before. Later
      -- acquires wait for this transaction, then find the key held by the next invocation, or
      -- free (row deleted) and take it.
      v_taken := NULL;
      LOOP
        SELECT t.id INTO v_next FROM ${s}.invocations AS t
        WHERE t.status = 'pending' AND t.exclusive AND t.service = v_service AND t.key = v_key
        ORDER BY t.seq LIMIT 1;
        EXIT WHEN NOT FOUND;
        -- Rechecked under the row lock: if something changed it meanwhile (a cancellation),
        -- look again with a new snapshot.
        UPDATE ${s}.invocations AS t SET owner = v_op ->> 4
        WHERE t.id = v_next AND t.status = 'pending' AND t.exclusive
          AND t.service = v_service AND t.key = v_key
        RETURNING to_jsonb(t) INTO v_taken;
        EXIT WHEN FOUND;
      END LOOP;
      IF v_taken IS NULL THEN
        DELETE FROM ${s}.key_locks AS l WHERE l.service = v_service AND l.key = v_key;
        v_res := '{}';
      ELSE
        UPDATE ${s}.key_locks AS l SET invocation_id = v_next
        WHERE l.service = v_service AND l.key = v_key;
        v_res := v_taken;
      END IF;
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
CREATE OR REPLACE FUNCTION ${s}.apply(p_ops jsonb, p_calls int[], p_plan int[]) RETURNS jsonb
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
            created_at, modified_at, completed_at, expires_at, cancel, outcome, owner)
          SELECT x.id, x.service, x.handler, x.key, x.exclusive, x.status, x.input,
            x.output, x.error, x.dedupe, x.caller_id, x.caller_entry, x.attempt, x.retry_index,
            x.run_at, x.created_at, x.modified_at, x.completed_at, x.expires_at, x.cancel,
            x.outcome, x.owner
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
          outcome = CASE WHEN u.s ? 'outcome' THEN u.s ->> 'outcome' ELSE t.outcome END,
          owner = CASE WHEN u.s ? 'owner' THEN u.s ->> 'owner' ELSE t.owner END
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
};
