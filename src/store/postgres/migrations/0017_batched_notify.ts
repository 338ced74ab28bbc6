import { fencedApply, replaceOnce } from './0006_fencing.js';

/**
 * Migration 17: cheaper messages (`notify` ops) for `apply`, as measured by replaying 6,830
 * batches captured from the 3-step workflow benchmark (issue 18; PostgreSQL backend CPU per
 * batch −20 to −25%).
 *
 * - A `notify` op ([n, message, to]) was an op "on its own" (kinds = 0, see migration 3): every
 *   finished invocation broadcasts one (`done`), so it cut each batch's runs of blind writes in
 *   two, and the update, journal and insert statements ran once per finished invocation instead
 *   of once per batch (38,499 runs for 6,830 batches; 6,840 now). And it went through the whole
 *   chain of `apply_op` versions (about 6 µs). It is now a blind write of its own kind (128):
 *   one statement sends a run's messages, in the order of the ops. It reads and writes no row,
 *   and PostgreSQL delivers notifications at commit in the order they were sent, so nothing
 *   else changes. A batch that runs call by call (a failing call, see migration 3) still sends
 *   them one by one through `apply_op`, which keeps handling `n`.
 * - A traced invocation's insert, and an update that sets a trace, were migration 8's `tr`, an
 *   op on its own, for the same reason: the runs' insert and update statements now write the
 *   `trace` column, so they stay blind writes (replayed with every insert traced: backend CPU
 *   −15 to −25%). Run on its own (a batch running call by call, or inside migration 13's `bi`),
 *   such an op still goes through `tr`: the new `apply_op` hands it there, and everything else
 *   to the previous one (`apply_op_v16`).
 * - `channel()` becomes a single expression with no FROM, which PostgreSQL inlines: a SQL
 *   function it cannot inline is parsed and planned again at every execution of the statement
 *   calling it (about 100 µs each time). Same names as before.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => {
  // The unquoted name, for channel names (schema names never need quoting, see quoteSchema).
  const schema = s.slice(1, -1);
  const name = `'keel.${schema}' || coalesce('.' || p_process, '')`;
  return /* sql */ `
CREATE OR REPLACE FUNCTION ${s}.channel(p_process text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT CASE WHEN octet_length(${name}) <= 63 THEN ${name} ELSE 'keel#' || md5(${name}) END
$fn$;

${notifyingApply(s)};

ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v16;

-- An insert or update whose record holds a trace, run on its own (a batch that runs call by
-- call, or inside migration 13's bi): migration 8's tr writes the trace after the op.
CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
BEGIN
  IF v_op ->> 0 = 'i' AND (v_op -> 1) ? 'trace' THEN
    RETURN ${s}.apply_op_v16(jsonb_build_array('tr', v_op -> 1 -> 'id', v_op -> 1 -> 'trace', v_op));
  END IF;
  IF v_op ->> 0 = 'u' AND (v_op -> 2) ? 'trace' THEN
    RETURN ${s}.apply_op_v16(jsonb_build_array('tr', v_op -> 1, v_op -> 2 -> 'trace', v_op));
  END IF;
  RETURN ${s}.apply_op_v16(v_op);
END
$fn$;
`;
};

/** Migration 6's four-argument `apply`, replaced, with the run kind 128: notify. */
function notifyingApply(s: string): string {
  const head = `CREATE FUNCTION ${s}.apply(p_ops jsonb, p_calls int[], p_plan int[], p_process text)`;
  let text = replaceOnce(fencedApply(s), head, head.replace('CREATE', 'CREATE OR REPLACE'));
  text = replaceOnce(
    text,
    "    END LOOP;\n    RETURN jsonb_build_array(to_jsonb(v_res), '[]'::jsonb);\n",
    `      -- 128: notify [n, message, to (null: every process)], in the order of the ops.
      IF v_kinds & 128 <> 0 THEN
        PERFORM pg_notify(${s}.channel(x.o ->> 2), x.o ->> 1)
        FROM (SELECT g, p_ops -> g AS o FROM generate_series(v_from, v_to - 1) AS g) AS x
        WHERE x.o ->> 0 = 'n'
        ORDER BY x.g;
      END IF;
    END LOOP;
    RETURN jsonb_build_array(to_jsonb(v_res), '[]'::jsonb);
`,
  );
  // The trace column (migration 8) in the runs' insert and update: a traced invocation's ops
  // stay blind writes instead of migration 8's tr, an op on its own.
  text = replaceOnce(
    text,
    'completed_at, expires_at, cancel, outcome, owner)\n          SELECT x.id,',
    'completed_at, expires_at, cancel, outcome, owner, trace)\n          SELECT x.id,',
  );
  text = replaceOnce(
    text,
    '            x.outcome, x.owner\n          FROM src CROSS JOIN LATERAL',
    '            x.outcome, x.owner, x.trace\n          FROM src CROSS JOIN LATERAL',
  );
  text = replaceOnce(
    text,
    "          owner = CASE WHEN u.s ? 'owner' THEN u.s ->> 'owner' ELSE t.owner END\n",
    "          owner = CASE WHEN u.s ? 'owner' THEN u.s ->> 'owner' ELSE t.owner END,\n" +
      "          trace = CASE WHEN u.s ? 'trace' THEN u.s ->> 'trace' ELSE t.trace END\n",
  );
  return text.trimEnd().replace(/;$/, '');
}
