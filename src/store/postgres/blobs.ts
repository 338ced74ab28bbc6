import type pg from 'pg';
import { INPUT_PART, LargePayload, missingBlob, OUTPUT_PART } from '../payloads.js';
import type { InvocationRow } from '../types.js';

/**
 * `row` with its out-of-line input and output (migration 13) read through `c`: for a row a
 * statement returned with its markers (`RETURNING *`), which the caller is about to run. Inside
 * the caller's transaction, the blobs are those of the row it holds.
 */
export async function withPayloads(
  c: pg.ClientBase,
  s: string,
  row: InvocationRow,
): Promise<InvocationRow> {
  if (!(row.input instanceof LargePayload) && !(row.output instanceof LargePayload)) return row;
  const { rows } = await c.query<{ part: number; data: string }>(
    `SELECT part, data FROM ${s}.invocation_blobs WHERE invocation_id = $1 AND part IN ($2, $3)`,
    [row.id, INPUT_PART, OUTPUT_PART],
  );
  const part = (p: number, what: string) => {
    const r = rows.find((x) => x.part === p);
    if (r === undefined) throw missingBlob(`the ${what} of invocation ${row.id}`);
    return JSON.parse(r.data) as unknown;
  };
  if (row.input instanceof LargePayload) row.input = part(INPUT_PART, 'input');
  if (row.output instanceof LargePayload) row.output = part(OUTPUT_PART, 'output');
  return row;
}
