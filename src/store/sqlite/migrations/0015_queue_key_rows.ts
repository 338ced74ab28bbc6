/**
 * Migration 15: a flow-control queue's per-key rows (`queue_keys`) no longer outlive their use.
 * A row is kept while items wait under its key or its start log holds starts a per-key rate
 * may still count (see `src/store/queue-plan.ts`); emptied, it is deleted, and the idle ones
 * with a start log are deleted oldest turn first once the rate's window passed them.
 *
 * - `queue_keys_idle`: the idle rows of a queue in turn order, for that deletion.
 * - The idle rows without a start log that earlier versions kept are deleted: nothing counts
 *   them (a key that gets an item again starts at the queue's current turn).
 */
export const sql = /* sql */ `
CREATE INDEX queue_keys_idle ON queue_keys (queue, turn, qkey) WHERE waiting = 0;
DELETE FROM queue_keys WHERE waiting = 0 AND starts = '[]';
`;
