/**
 * The workload of the store micro-benchmarks (bench/store.ts, bench/store-postgres.ts): the
 * five sequential writes of a 3-step workflow, and engine-like invocation ids.
 */
import type { WriteOp } from '../src/store/types.js';

/** The writes of one 3-step workflow, in order: insert, three journal entries, completion. */
export function invocationWrites(id: string, now: number): WriteOp[][] {
  const step = (index: number): WriteOp[] => [
    {
      op: 'journal.put',
      invocationId: id,
      index,
      entry: {
        kind: 'run',
        name: `step-${index}`,
        done: true,
        value: { ok: true, index, at: now },
      },
    },
  ];
  return [
    [
      {
        op: 'invocation.insert',
        row: {
          id,
          service: 'Orders',
          handler: 'process',
          key: id,
          exclusive: true,
          status: 'running',
          input: { orderId: id, items: [{ sku: 'a-1', qty: 2 }], total: 42.5 },
          dedupe: `idem-${id}`,
          attempt: 0,
          retryIndex: -1,
          createdAt: now,
          modifiedAt: now,
        },
      },
    ],
    step(0),
    step(1),
    step(2),
    [
      {
        op: 'invocation.update',
        id,
        set: {
          status: 'completed',
          output: { shipped: true },
          modifiedAt: now,
          completedAt: now,
          expiresAt: now + 86_400_000,
        },
      },
    ],
  ];
}

/** Time-ordered ids like the engine's: a millisecond prefix, then random characters. */
export function newId(): string {
  return `inv_${Date.now().toString(32).padStart(10, '0')}${Math.random().toString(32).slice(2, 18).padEnd(16, '0')}`;
}
