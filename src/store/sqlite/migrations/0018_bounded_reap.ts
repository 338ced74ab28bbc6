/**
 * Migration 18: nothing to change here. PostgreSQL's migration 18 bounds how many invocations a
 * `process.reap` takes over (`limit`); this store's reap is code (store/sqlite/ops.ts), which
 * takes the limit as it is. The number keeps both stores' schema versions the same for the
 * same features.
 */
export const sql = /* sql */ `SELECT 1;`;
