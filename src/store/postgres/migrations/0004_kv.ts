/**
 * Migration 4: the key-value space extensions keep shared state in (circuit breakers, rate
 * limits, webhook endpoints and delivery records), as SQLite's migration 4.
 *
 * - `version` makes read-modify-write safe across processes: `kv.put` with `expectVersion`
 *   writes only over the version it read (compare-and-set).
 * - `expires_at` (epoch ms, NULL = never): the partial index serves `kv.purge`.
 *
 * The kv ops read before they write, so they run through `apply_op`. Rather than redefine
 * `apply_op` whole (it is long, and a copy would drift), the one from migration 3 is renamed
 * `apply_op_v3` and a new `apply_op` handles the kv codes and hands every other code to it.
 * `apply` finds `apply_op` by name when it runs, so it picks up the new one unchanged.
 *
 * ## Plans that stay right as tables grow
 *
 * `apply` plans each statement once per connection (a generic plan, see migration 2). A plan
 * made while the tables were small — the first batch after start, or a database whose tables
 * were never analyzed (autovacuum off) — may scan `invocations` sequentially to update a
 * handful of rows by id, and keeps doing so as the table grows: throughput decayed from ~850
 * to ~80 invocations/s in a long benchmark. Every statement of `apply` finds its rows by key,
 * so `enable_seqscan = off` makes the planner take the index whenever one serves, whatever the
 * table size it believes. It still scans where no index serves (the reaper's scan of the
 * small `processes` table), at a cost inflated by the setting — which made PostgreSQL JIT-
 * compile that statement on every run (90 ms each); `jit = off` because nothing `apply` runs
 * touches enough rows for JIT to pay.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
CREATE TABLE ${s}.kv (
  scope      text COLLATE "C" NOT NULL,
  key        text COLLATE "C" NOT NULL,
  value      text NOT NULL,
  version    integer NOT NULL,
  expires_at bigint,
  PRIMARY KEY (scope, key)
);

CREATE INDEX kv_expiry ON ${s}.kv (expires_at) WHERE expires_at IS NOT NULL;

ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v3;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_row     jsonb;
  v_id      text;
  v_holder  text;
  v_res     jsonb;
  v_scope   text := v_op ->> 1;
  v_key     text := v_op ->> 2;
  v_expect  int;
  v_version int;
  v_count   int;
BEGIN
  CASE v_op ->> 0
  -- invocation.insert with acquireKey: [ia, row]. Result: [true, acquired], or the invocation
  -- holding the dedupe key. The key is taken first, as 'ka' does (a conflict locks the lock
  -- row, ordering this with a release in flight), so the row is inserted with its final
  -- status: 'running' when it got the key, else as given ('pending', queued).
  WHEN 'ia' THEN
    v_row := v_op -> 1;
    v_id := v_row ->> 'id';
    INSERT INTO ${s}.key_locks AS l (service, key, invocation_id)
    VALUES (v_row ->> 'service', v_row ->> 'key', v_id)
    ON CONFLICT (service, key) DO UPDATE SET invocation_id = l.invocation_id
    RETURNING l.invocation_id INTO v_holder;
    IF v_holder = v_id THEN
      v_row := jsonb_set(v_row, '{status}', '"running"');
    END IF;
    v_res := ${s}.apply_op_v3(jsonb_build_array('i', v_row));
    IF v_res = 'true'::jsonb THEN
      RETURN jsonb_build_array(true, v_holder = v_id);
    END IF;
    -- A dedupe conflict: the row was not inserted, so it takes no key.
    IF v_holder = v_id THEN
      DELETE FROM ${s}.key_locks AS l
      WHERE l.service = v_row ->> 'service' AND l.key = v_row ->> 'key' AND l.invocation_id = v_id;
    END IF;
    RETURN v_res;

  -- kv.put: [kp, scope, key, value, expectVersion (null: any), expiresAt]. Result: [ok, version].
  WHEN 'kp' THEN
    v_expect := (v_op ->> 4)::int;
    IF v_expect IS NULL THEN
      INSERT INTO ${s}.kv AS k (scope, key, value, version, expires_at)
      VALUES (v_scope, v_key, v_op ->> 3, 1, (v_op ->> 5)::bigint)
      ON CONFLICT (scope, key) DO UPDATE
        SET value = excluded.value, version = k.version + 1, expires_at = excluded.expires_at
      RETURNING k.version INTO v_version;
      RETURN jsonb_build_array(true, v_version);
    ELSIF v_expect = 0 THEN
      -- A concurrent insert of the same key makes this wait, then conflict: the SELECT below
      -- (a new snapshot) sees the version it committed.
      INSERT INTO ${s}.kv (scope, key, value, version, expires_at)
      VALUES (v_scope, v_key, v_op ->> 3, 1, (v_op ->> 5)::bigint)
      ON CONFLICT (scope, key) DO NOTHING;
      IF FOUND THEN
        RETURN '[true, 1]';
      END IF;
    ELSE
      -- Rechecked on the latest row version if another write updated it meanwhile.
      UPDATE ${s}.kv AS k
      SET value = v_op ->> 3, version = k.version + 1, expires_at = (v_op ->> 5)::bigint
      WHERE k.scope = v_scope AND k.key = v_key AND k.version = v_expect
      RETURNING k.version INTO v_version;
      IF FOUND THEN
        RETURN jsonb_build_array(true, v_version);
      END IF;
    END IF;
    SELECT k.version INTO v_version FROM ${s}.kv AS k WHERE k.scope = v_scope AND k.key = v_key;
    RETURN jsonb_build_array(false, coalesce(v_version, 0));

  -- kv.delete: [kd, scope, key, expectVersion (null: any)]. Result: [ok, version].
  WHEN 'kd' THEN
    v_expect := (v_op ->> 3)::int;
    DELETE FROM ${s}.kv AS k
    WHERE k.scope = v_scope AND k.key = v_key AND (v_expect IS NULL OR k.version = v_expect)
    RETURNING k.version INTO v_version;
    IF FOUND THEN
      RETURN jsonb_build_array(true, v_version);
    END IF;
    SELECT k.version INTO v_version FROM ${s}.kv AS k WHERE k.scope = v_scope AND k.key = v_key;
    RETURN jsonb_build_array(false, coalesce(v_version, 0));

  -- kv.purge: [kx, before, limit]. Result: how many were deleted. Rows another process is
  -- purging (or writing) are skipped, not waited for.
  WHEN 'kx' THEN
    DELETE FROM ${s}.kv AS k
    WHERE (k.scope, k.key) IN (
      SELECT e.scope, e.key FROM ${s}.kv AS e
      WHERE e.expires_at <= (v_op ->> 1)::bigint
      LIMIT (v_op ->> 2)::int
      FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN to_jsonb(v_count);

  ELSE
    RETURN ${s}.apply_op_v3(v_op);
  END CASE;
END
$fn$;

ALTER FUNCTION ${s}.apply(jsonb, int[], int[]) SET enable_seqscan = off;
ALTER FUNCTION ${s}.apply(jsonb, int[], int[]) SET jit = off;
`;
