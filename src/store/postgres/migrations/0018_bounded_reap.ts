/**
 * Migration 18: `process.reap` with a `limit` ([px, now, by, limit]) takes over at most `limit`
 * invocations, the rest at the next reap.
 *
 * A reap took every invocation of the processes it reaped in one statement. With 200,000
 * unfinished invocations (workflows sleeping or waiting, queued and scheduled ones) that
 * statement ran for about 10 s, and the reaper's own heartbeat, which waits for every batch in
 * flight, waited with it: the reaper found its lease in doubt, fenced itself and joined again
 * under a new id, and then reaped its old id's invocations, again in 10 s. A restart never
 * settled. The engine now reaps in rounds of a few thousand, so heartbeats pass between them.
 *
 * A reaped process's row is deleted by the first round, so the invocations a round leaves are
 * those of an owner that is not registered, which the next round (of any process) adopts as
 * before. Which invocations a round takes: the first `limit` of an owner's in arrival order
 * (`seq`), read from the index `invocations_owner`, so a round costs what it takes, not what
 * is left. A reap without a limit is unchanged.
 *
 * As migrations 4 to 17 did, the current `apply_op` is renamed (`apply_op_v17`) and a new one
 * handles the new form and hands every other op to it.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v17;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_from    text;
  v_dead    text[];
  v_orphans text[];
  v_taken   jsonb;
BEGIN
  IF v_op ->> 0 <> 'px' OR jsonb_array_length(v_op) < 4 THEN
    RETURN ${s}.apply_op_v17(v_op);
  END IF;
  -- As migration 6's px, with LIMIT on the invocations taken, in the order of the index
  -- invocations_owner (owner, seq): ORDER BY id would sort every invocation of the owners at
  -- each round. SKIP LOCKED never waits, so the order of the locks cannot deadlock.
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
      LIMIT (v_op ->> 3)::integer
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
END
$fn$;
`;
