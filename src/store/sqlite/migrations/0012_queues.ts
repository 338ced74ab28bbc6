/**
 * Migration 12: flow-control queues (see `src/store/queue-plan.ts`).
 *
 * - `queue_items`: one row per invocation put into a queue (`queue.put`), waiting (`admitted`
 *   0) or admitted (1); `n` is the invocation's `seq` (arrival order). Admitted items are
 *   forgotten once their invocation finished, at the queue's next admission.
 * - `queue_keys`: per queue and key, how many items wait, the turn it was last served at
 *   (fairness: lowest turn first) and its start log (its rate).
 * - `queues`: per queue, the turn counter and its start log.
 * - `invocations.status` gains `queued` (no constraint to change: statuses are plain text).
 */
export const sql = /* sql */ `
CREATE TABLE queue_items (
  invocation_id TEXT NOT NULL PRIMARY KEY,
  queue         TEXT NOT NULL,
  qkey          TEXT NOT NULL,
  priority      INTEGER NOT NULL,
  n             INTEGER NOT NULL,
  admitted      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX queue_items_waiting ON queue_items (queue, qkey, priority DESC, n) WHERE admitted = 0;
CREATE INDEX queue_items_admitted ON queue_items (queue, qkey) WHERE admitted = 1;

CREATE TABLE queue_keys (
  queue   TEXT NOT NULL,
  qkey    TEXT NOT NULL,
  waiting INTEGER NOT NULL,
  turn    INTEGER NOT NULL,
  starts  TEXT NOT NULL DEFAULT '[]',
  PRIMARY KEY (queue, qkey)
) WITHOUT ROWID;
CREATE INDEX queue_keys_turn ON queue_keys (queue, turn, qkey) WHERE waiting > 0;

CREATE TABLE queues (
  queue  TEXT NOT NULL PRIMARY KEY,
  turn   INTEGER NOT NULL,
  starts TEXT NOT NULL
) WITHOUT ROWID;
`;
