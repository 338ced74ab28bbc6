/**
 * Migration 14: no change to the tables. `invocation.expect` may now also expect the row's
 * `runAt` (a debounced start, see engine/timer-firing.ts), checked in the adapter's code (see
 * ops.ts); PostgreSQL's migration 14 adds that to its `apply_op`, and both adapters number their
 * migrations alike, so the same schema version means the same features.
 */
export const sql = /* sql */ `SELECT 1;`;
