/**
 * Migration 13: values stored out of line (see store/payloads.ts and docs/payloads.md), as
 * SQLite's migration 13. A column whose JSON is longer than the store's `largePayloadThreshold`
 * holds a marker (`@blob:<bytes>`; a journal entry's `data` holds `"$blob":<bytes>`), and the
 * JSON text lives in a blob table, written in the same transaction as its row:
 *
 * - `invocation_blobs`: an invocation's input (part -1), output (part -2) and journal entries
 *   (part = index); deleted with the invocation (`d`).
 * - `state_blobs`: a state value; deleted by triggers when the value is deleted (`sd`, `sc`) or
 *   overwritten by one stored in line (`s`, a blind write batched with others, which therefore
 *   cannot do it itself).
 *
 * Two new op codes wrap the op that writes the row, and write its blobs after it, in the same
 * transaction; they run on their own (they are rare: only writes of large values use them):
 * - `bi` [bi, invocationId, [[part, json], ...], op]: `op` is an `i`, `ia`, `u`, `uc`, `j` or
 *   `c` (or a `tr` around one). The blobs are written only when `op` wrote its row: an insert
 *   that met a dedupe conflict, a conditional update that did not apply and a completion of an
 *   entry done already (whose stored value must not change) write none.
 * - `bs` [bs, service, key, name, json, op]: `op` is the `s` of that value.
 *
 * As migrations 4 to 12 did, the current `apply_op` is renamed (`apply_op_v12`) and a new one
 * handles the new codes and `d`, and hands every other op to it. Depends on migration 12
 * being present (its `apply_op_v11` rename).
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
CREATE TABLE ${s}.invocation_blobs (
  invocation_id text COLLATE "C" NOT NULL,
  part          integer NOT NULL,
  data          text NOT NULL,
  PRIMARY KEY (invocation_id, part)
);

CREATE TABLE ${s}.state_blobs (
  service text COLLATE "C" NOT NULL,
  key     text COLLATE "C" NOT NULL,
  name    text COLLATE "C" NOT NULL,
  data    text NOT NULL,
  PRIMARY KEY (service, key, name)
);

CREATE FUNCTION ${s}.state_blob_gone() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM ${s}.state_blobs AS b
  WHERE b.service = OLD.service AND b.key = OLD.key AND b.name = OLD.name;
  RETURN NULL;
END
$fn$;

-- The WHEN conditions keep the common case (values in line) free of any function call.
CREATE TRIGGER state_blob_replaced AFTER UPDATE OF value ON ${s}.state FOR EACH ROW
  WHEN (left(OLD.value, 6) = '@blob:' AND (NEW.value IS NULL OR left(NEW.value, 6) <> '@blob:'))
  EXECUTE FUNCTION ${s}.state_blob_gone();

CREATE TRIGGER state_blob_deleted AFTER DELETE ON ${s}.state FOR EACH ROW
  WHEN (left(OLD.value, 6) = '@blob:')
  EXECUTE FUNCTION ${s}.state_blob_gone();

ALTER FUNCTION ${s}.apply_op(jsonb) RENAME TO apply_op_v12;

CREATE FUNCTION ${s}.apply_op(v_op jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
  v_r     jsonb;
  v_inner text;
  v_write boolean;
BEGIN
  CASE v_op ->> 0
  WHEN 'bi' THEN
    v_r := ${s}.apply_op(v_op -> 3);
    v_inner := v_op -> 3 ->> 0;
    IF v_inner = 'tr' THEN
      v_inner := v_op -> 3 -> 3 ->> 0;
    END IF;
    v_write := CASE v_inner
      WHEN 'i' THEN jsonb_typeof(v_r) IS DISTINCT FROM 'object'
      WHEN 'ia' THEN jsonb_typeof(v_r) IS DISTINCT FROM 'object'
      WHEN 'uc' THEN v_r = 'true'::jsonb
      WHEN 'u' THEN EXISTS (SELECT 1 FROM ${s}.invocations AS t WHERE t.id = v_op ->> 1)
      WHEN 'c' THEN coalesce((v_r ->> 0)::boolean, false)
      ELSE true
    END;
    IF v_write THEN
      INSERT INTO ${s}.invocation_blobs AS b (invocation_id, part, data)
      SELECT v_op ->> 1, (p.v ->> 0)::int, p.v ->> 1 FROM jsonb_array_elements(v_op -> 2) AS p(v)
      ON CONFLICT (invocation_id, part) DO UPDATE SET data = excluded.data;
    END IF;
    RETURN v_r;
  WHEN 'bs' THEN
    v_r := ${s}.apply_op(v_op -> 5);
    INSERT INTO ${s}.state_blobs AS b (service, key, name, data)
    VALUES (v_op ->> 1, v_op ->> 2, v_op ->> 3, v_op ->> 4)
    ON CONFLICT (service, key, name) DO UPDATE SET data = excluded.data;
    RETURN v_r;
  WHEN 'd' THEN
    v_r := ${s}.apply_op_v12(v_op);
    DELETE FROM ${s}.invocation_blobs AS b WHERE b.invocation_id = v_op ->> 1;
    RETURN v_r;
  ELSE
    RETURN ${s}.apply_op_v12(v_op);
  END CASE;
END
$fn$;
`;
