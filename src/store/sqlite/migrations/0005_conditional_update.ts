/**
 * Migration 5: no change to the tables. `invocation.update` with `ifStatus` needs no schema
 * here (SQLite's ops are statements prepared by the adapter), but PostgreSQL's migration 5
 * adds it to the schema's `apply_op`, and both adapters number their migrations alike, so the
 * same schema version means the same features on both.
 */
export const sql = /* sql */ `SELECT 1;`;
