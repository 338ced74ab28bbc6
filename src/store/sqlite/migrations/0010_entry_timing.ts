/**
 * Migration 10: no change to the tables. Journal entries' timing fields (`startedAt`,
 * `durationMs`, `attempts`, `completedAt`, `completedBy`) ride in the `data` JSON every entry
 * already has, and a completion keeps the waiting entry's `startedAt` in the adapter's
 * prepared statements (see `keepStartedAt`). PostgreSQL's migration 10 adds that to its
 * `apply_op`, and both adapters number their migrations alike, so the same schema version
 * means the same features.
 */
export const sql = /* sql */ `SELECT 1;`;
