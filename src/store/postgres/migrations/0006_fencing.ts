import { sql as m0003 } from './0003_cluster.js';

/**
 * Migration 6: fenced writes, orphan adoption, race-free suspension, and transparent retry of
 * deadlocked batches.
 *
 * ## `apply(ops, calls, plan, process)`: fenced batches
 *
 * A process that stalled past its lease (a long GC pause, a partition) was reaped and its
 * invocations run elsewhere; when it wakes up, nothing it writes under its old id may commit.
 * Every batch now names the process that sends it: it is applied only while that process is
 * registered, checked by locking the process's row `FOR KEY SHARE` before anything else. The
 * lock orders the batch with a reap of that process (a `DELETE`, which conflicts): either the
 * batch commits first and the reaper then takes over what it wrote, or the reap commits first
 * and the batch fails as a whole with SQLSTATE `KL002`, which the store reports as
 * `process_fenced`. `KEY SHARE` does not conflict with the process's own heartbeat (an update
 * of a non-key column), and the reaper skips a locked row (`SKIP LOCKED`) instead of waiting,
 * reaping it at its next round. One index lookup per batch, not per op. A NULL process (a
 * store not in a cluster, or a batch that registers a process) is not checked.
 *
 * ## Deadlocks retried by the client, not failed per call
 *
 * `apply` used to catch a deadlock (40P01) or serialization failure (40001) like any error: a
 * batch of one call failed it (503), and a longer batch re-ran call by call, where the error
 * failed one call while the later ones committed. Now both are re-raised, rolling the whole
 * batch back, and the store runs the same batch again before any later one: the order of
 * writes is kept, and the callers never see the conflict.
 *
 * `apply` is the migration 3 definition with exactly these changes (derived from its text,
 * which never changes, so the two cannot drift), plus the settings migration 4 added. The
 * three-argument `apply` stays for processes still running the previous version.
 *
 * ## `apply_op`: new and changed ops
 *
 * As migrations 4 and 5 did, the current `apply_op` is renamed (`apply_op_v5`) and a new one
 * handles these codes and hands every other one to it.
 *
 * - `ss` (invocation.suspend): suspends a running invocation unless an entry it waits for is
 *   already done. A completion committed while its owner was going to sleep found it
 *   `running`, so it did not resume it; the suspension would then strand it. It locks the row
 *   first and reads the journal after (a new snapshot), so a completion of another process,
 *   which holds the row `FOR SHARE` until it commits, is seen.
 * - `c` and `pc` (completions, in `apply_op_v3`, redefined from migration 3's text): one that
 *   waited for the row lock of another process's invocation reads its status again under the
 *   lock and resumes it if a suspension committed meanwhile. With the two changes above, an
 *   invocation is never left suspended with a completed entry it waits for, whatever becomes
 *   of the wake-up message (its owner may die, or its connection drop, before it is heard).
 * - `px` (process.reap): also adopts the unfinished invocations of every owner that is not
 *   registered (a process reaped while it wrote, rows written before fencing existed), found
 *   by a loose index scan of `invocations_owner` (one probe per distinct owner, not one per
 *   invocation). Invocations are locked in id order and `SKIP LOCKED`: a reaper never waits for
 *   (or deadlocks with) a batch that holds one of them; what it skips, its next round adopts.
 * - `ka` (key.acquire): never takes a free key for a finished invocation. An acquire sent while
 *   the invocation was pending (a sweep, a takeover) can arrive after a release handed it the
 *   key and it ran and finished; the key then stayed held by a finished invocation, which
 *   nothing releases, and every invocation queued on that object waited forever (the torture
 *   harness: 202 adds and the 37 workflows calling them).
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v5;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_inv     text;
  v_from    text;
  v_dead    text[];
  v_orphans text[];
  v_taken   jsonb;
  v_holder  text;
  v_status  text;
BEGIN
  CASE v_op ->> 0
  -- invocation.suspend: [ss, id, waitingFor (indexes), modifiedAt]. Result: whether suspended.
  WHEN 'ss' THEN
    v_inv := v_op ->> 1;
    -- The row lock first, the journal after it (a new snapshot): a completion of another
    -- process holds the row FOR SHARE until it commits, so it is seen. One UPDATE would
    -- recheck only the row after waiting, with the journal as of before: it suspended anyway.
    PERFORM 1 FROM ${s}.invocations AS t WHERE t.id = v_inv AND t.status = 'running' FOR UPDATE;
    IF NOT FOUND THEN
      RETURN 'false';
    END IF;
    IF EXISTS (
      SELECT 1 FROM ${s}.journal AS j
      WHERE j.invocation_id = v_inv AND j.done
        AND j.idx IN (SELECT x::int FROM jsonb_array_elements_text(v_op -> 2) AS x)) THEN
      RETURN 'false';
    END IF;
    UPDATE ${s}.invocations AS t SET status = 'suspended', modified_at = (v_op ->> 3)::bigint
    WHERE t.id = v_inv;
    RETURN 'true';

  -- process.reap: [px, now, by]. Result: {r: reaped and orphaned owners, i: invocations taken}.
  WHEN 'px' THEN
    v_from := v_op ->> 2;
    WITH dead AS (
      DELETE FROM ${s}.processes AS p
      WHERE p.id IN (
        SELECT q.id FROM ${s}.processes AS q
        WHERE q.lease_until < (v_op ->> 1)::bigint AND q.id <> v_from
        FOR UPDATE SKIP LOCKED)
      RETURNING p.id
    )
    SELECT coalesce(array_agg(dead.id), '{}') INTO v_dead FROM dead;
    -- Sees the deletions above: the owners just reaped are among them.
    WITH RECURSIVE o(owner) AS (
      (SELECT t.owner FROM ${s}.invocations AS t
       WHERE t.owner IS NOT NULL AND t.status NOT IN ('completed', 'failed')
       ORDER BY t.owner LIMIT 1)
      UNION ALL
      SELECT (SELECT t.owner FROM ${s}.invocations AS t
              WHERE t.owner > o.owner AND t.status NOT IN ('completed', 'failed')
              ORDER BY t.owner LIMIT 1)
      FROM o WHERE o.owner IS NOT NULL
    )
    SELECT coalesce(array_agg(o.owner), '{}') INTO v_orphans FROM o
    WHERE o.owner IS NOT NULL AND o.owner <> v_from
      AND NOT EXISTS (SELECT 1 FROM ${s}.processes AS p WHERE p.id = o.owner);
    v_taken := '[]';
    IF cardinality(v_orphans) > 0 THEN
      WITH c AS (
        SELECT t.id FROM ${s}.invocations AS t
        WHERE t.owner = ANY (v_orphans) AND t.status NOT IN ('completed', 'failed')
        ORDER BY t.id
        FOR UPDATE SKIP LOCKED
      ), taken AS (
        UPDATE ${s}.invocations AS t SET owner = v_from FROM c WHERE t.id = c.id
        RETURNING t.id, t.seq
      )
      SELECT coalesce(jsonb_agg(taken.id ORDER BY taken.seq), '[]') INTO v_taken FROM taken;
    END IF;
    RETURN jsonb_build_object(
      'r', (SELECT coalesce(jsonb_agg(DISTINCT x ORDER BY x), '[]')
            FROM unnest(v_dead || v_orphans) AS x),
      'i', v_taken);

  -- key.acquire: [ka, service, key, invocationId]. Result: [acquired, holder (NULL: free)].
  -- As migration 3's, except that it never takes a free key for a finished invocation.
  WHEN 'ka' THEN
    v_inv := v_op ->> 3;
    INSERT INTO ${s}.key_locks AS l (service, key, invocation_id)
    VALUES (v_op ->> 1, v_op ->> 2, v_inv)
    ON CONFLICT (service, key) DO UPDATE SET invocation_id = l.invocation_id
    RETURNING l.invocation_id INTO v_holder;
    IF v_holder = v_inv THEN
      -- Under a lock on the invocation, taken after the key's: a finish committed before
      -- (whose release found the key free or deleted it) is seen; one that comes later
      -- waits, then its release finds the key held by it.
      SELECT t.status INTO v_status FROM ${s}.invocations AS t WHERE t.id = v_inv FOR SHARE;
      IF v_status IN ('completed', 'failed') THEN
        DELETE FROM ${s}.key_locks AS l
        WHERE l.service = v_op ->> 1 AND l.key = v_op ->> 2 AND l.invocation_id = v_inv;
        RETURN '[false, null]';
      END IF;
    END IF;
    RETURN jsonb_build_array(v_holder = v_inv, v_holder);

  ELSE
    RETURN ${s}.apply_op_v5(v_op);
  END CASE;
END
$fn$;

${resumingApplyOp(s)}
${fencedApply(s)}
`;

/** Replaces `from` in `text`, which must occur exactly once (the source is a fixed migration). */
export function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0)
    throw new Error(`migration 6: expected exactly one ${JSON.stringify(from)} in migration 3`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** The four-argument `apply`: migration 3's, fenced, re-raising deadlocks (see above). */
export function fencedApply(s: string): string {
  const source = m0003(s);
  const head = `CREATE OR REPLACE FUNCTION ${s}.apply(p_ops jsonb, p_calls int[], p_plan int[]) RETURNS jsonb`;
  let text = source.slice(source.indexOf(head));
  text = replaceOnce(
    text,
    head,
    `CREATE FUNCTION ${s}.apply(p_ops jsonb, p_calls int[], p_plan int[], p_process text) RETURNS jsonb`,
  );
  text = replaceOnce(
    text,
    'SET enable_mergejoin = off\n',
    'SET enable_mergejoin = off\nSET enable_seqscan = off\nSET jit = off\n',
  );
  text = replaceOnce(
    text,
    'BEGIN\n  BEGIN\n',
    `BEGIN
  IF p_process IS NOT NULL THEN
    PERFORM 1 FROM ${s}.processes AS p WHERE p.id = p_process FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'KL002',
        MESSAGE = format('process %s is not registered (its lease ended and it was reaped)', p_process);
    END IF;
  END IF;
  BEGIN
`,
  );
  const reraise = "IF SQLSTATE IN ('40P01', '40001') THEN\n      RAISE;\n    END IF;\n";
  text = replaceOnce(
    text,
    "  EXCEPTION WHEN OTHERS THEN\n    IF array_length(p_calls, 1) = 1 AND SQLSTATE <> 'KL001' THEN",
    `  EXCEPTION WHEN OTHERS THEN\n    ${reraise}    IF array_length(p_calls, 1) = 1 AND SQLSTATE <> 'KL001' THEN`,
  );
  text = replaceOnce(
    text,
    '    EXCEPTION WHEN OTHERS THEN\n      GET STACKED DIAGNOSTICS',
    `    EXCEPTION WHEN OTHERS THEN\n      ${reraise.replace(/\n {4}/g, '\n      ')}      GET STACKED DIAGNOSTICS`,
  );
  return text;
}

/**
 * Migration 3's `apply_op` (now `apply_op_v3`, which still handles `c` and `pc`) with one
 * change: a completion that waited for the invocation's row lock (another process's
 * completion, see migration 3) reads the status again under it, and resumes an invocation
 * whose suspension committed meanwhile. Before, it left it suspended with the completed entry
 * and only the wake-up message to resume it: lost when its owner died or its connection
 * dropped, and nothing else looks at suspended rows.
 */
function resumingApplyOp(s: string): string {
  const source = m0003(s);
  const head = `CREATE OR REPLACE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb`;
  let text = source.slice(source.indexOf(head), source.indexOf('-- Every write() call queued'));
  text = replaceOnce(
    text,
    head,
    `CREATE OR REPLACE FUNCTION ${s}.apply_op_v3(v_op jsonb) RETURNS jsonb`,
  );
  const resume = (id: string): string => `          IF v_status = 'suspended' THEN
            UPDATE ${s}.invocations AS t SET status = 'running' WHERE t.id = ${id};
            v_resumed := true;
          END IF;
`;
  text = replaceOnce(
    text,
    `          SELECT t.owner INTO v_owner FROM ${s}.invocations AS t WHERE t.id = v_inv FOR SHARE;
`,
    `          SELECT t.status, t.owner INTO v_status, v_owner FROM ${s}.invocations AS t
          WHERE t.id = v_inv FOR SHARE;
${resume('v_inv')}`,
  );
  text = replaceOnce(
    text,
    `          SELECT t.owner INTO v_owner FROM ${s}.invocations AS t
          WHERE t.id = v_w.invocation_id FOR SHARE;
`,
    `          SELECT t.status, t.owner INTO v_status, v_owner FROM ${s}.invocations AS t
          WHERE t.id = v_w.invocation_id FOR SHARE;
${resume('v_w.invocation_id')}`,
  );
  return text;
}
