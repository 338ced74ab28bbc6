/**
 * Migration 16: a flow-control queue's start logs (`queues.starts`, `queue_keys.starts`) become
 * sliding-window slots `[first, last, count]` (see `src/core/sliding-window.ts` and
 * `src/store/queue-plan.ts`) instead of the last `limit` start times, so an admission reads and
 * writes O(1) bytes per start instead of O(limit).
 *
 * A stored log of start times becomes one slot per distinct time (`[t, t, n]`, oldest first):
 * exactly the starts it counted, so no limit lets more through, or fewer, than before. Such a
 * log may hold up to `limit` slots; they leave within one period, and later starts join the
 * newest slot, so every log is small again one period after the upgrade. Logs already in the
 * new form (an array of arrays) and empty ones are left as they are.
 */
export const sql = /* sql */ `
UPDATE queues SET starts = (
  SELECT json_group_array(json_array(t, t, n) ORDER BY t)
  FROM (SELECT value AS t, count(*) AS n FROM json_each(queues.starts) GROUP BY value)
) WHERE json_type(starts, '$[0]') IN ('integer', 'real');
UPDATE queue_keys SET starts = (
  SELECT json_group_array(json_array(t, t, n) ORDER BY t)
  FROM (SELECT value AS t, count(*) AS n FROM json_each(queue_keys.starts) GROUP BY value)
) WHERE json_type(starts, '$[0]') IN ('integer', 'real');
`;
