/**
 * Migration 6: no change to the tables. `invocation.suspend` and the reaper's adoption of
 * orphaned invocations need no schema here (SQLite's ops are statements prepared by the
 * adapter), but PostgreSQL's migration 6 adds them (and fenced batches) to its schema, and both
 * adapters number their migrations alike, so the same schema version means the same features.
 */
export const sql = /* sql */ `SELECT 1;`;
