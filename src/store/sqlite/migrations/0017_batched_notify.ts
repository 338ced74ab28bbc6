/**
 * Migration 17: nothing to change here. PostgreSQL's migration 17 sends a batch's messages
 * with one statement; this store has no messages (one process per file). The number keeps
 * both stores' schema versions the same for the same features.
 */
export const sql = /* sql */ `SELECT 1;`;
