/**
 * Migration 11: no change to the tables. An object key handed on (`key.release`) or taken late
 * (`key.acquire`) now starts its invocation (`running`) in the same op, in the adapter's code
 * (see ops.ts); PostgreSQL's migration 11 adds that to its `apply_op`, and both adapters number
 * their migrations alike, so the same schema version means the same features.
 */
export const sql = /* sql */ `SELECT 1;`;
