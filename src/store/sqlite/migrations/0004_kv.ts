/**
 * Migration 4: the key-value space extensions keep shared state in (circuit breakers, rate
 * limits, webhook endpoints and delivery records).
 *
 * - `version` makes read-modify-write safe across processes: `kv.put` with `expectVersion`
 *   writes only over the version it read (compare-and-set).
 * - `expires_at` (epoch ms, NULL = never): the partial index serves `kv.purge`, and costs
 *   nothing for values that never expire.
 */
export const sql = /* sql */ `
CREATE TABLE kv (
  scope TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  version INTEGER NOT NULL,
  expires_at INTEGER,
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE INDEX kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
`;
