/**
 * Migration 7: no change to the tables. `invocation.expect` needs no schema here (SQLite's ops
 * are statements prepared by the adapter), but PostgreSQL's migration 7 adds it to its schema,
 * and both adapters number their migrations alike, so the same schema version means the same
 * features.
 */
export const sql = /* sql */ `SELECT 1;`;
