/**
 * Migration 19: nothing to change here. PostgreSQL's migration 19 adds `process.leave` to its
 * `apply_op`; this store's ops are code (store/sqlite/ops.ts). The number keeps both stores'
 * schema versions the same for the same features.
 */
export const sql = /* sql */ `SELECT 1;`;
