import type { ErrorInfo } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';

/**
 * The Store interface: everything the engine persists goes through it. Adapters (SQLite,
 * PostgreSQL) implement it and must pass the one conformance suite in `conformance.ts`.
 *
 * Writes are typed operations, not SQL, and are applied by `write()` in order. An adapter
 * groups the writes of many concurrent callers into shared commits (group commit): a
 * `write()` resolves only once its operations are durable, and operations from calls that
 * resolved earlier are never lost when a later one is.
 */
export interface Store {
  /** Applies the operations atomically and durably; resolves with one result per operation. */
  write(ops: WriteOp[]): Promise<OpResult[]>;

  getInvocation(id: string): Promise<InvocationRow | undefined>;
  /** The invocation holding a deduplication key (idempotency key or workflow run), if any. */
  findByDedupe(dedupe: string): Promise<InvocationRow | undefined>;
  /** Every journal entry of an invocation, in index order. */
  getJournal(id: string): Promise<Array<[number, JournalEntry]>>;
  getState(service: string, key: string, name: string): Promise<unknown>;
  getStateKeys(service: string, key: string): Promise<string[]>;
  /** Invocations to pick up after a restart: every one that is running or pending, oldest first. */
  listRunnable(): Promise<InvocationRow[]>;
  /** Exclusive invocations holding or waiting for an object key: running, suspended, backing-off, paused or pending. */
  listKeyHolders(): Promise<
    Array<Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>>
  >;
  /** Timers that fire at or before `before`, earliest first, at most `limit`. */
  dueTimers(before: number, limit: number): Promise<TimerRow[]>;
  /** Finished invocations whose retention ended at or before `now`, at most `limit`. */
  expired(now: number, limit: number): Promise<string[]>;
  listInvocations(filter: InvocationFilter): Promise<InvocationRow[]>;

  close(): Promise<void>;
}

export type InvocationStatus =
  | 'pending' // accepted, waiting to start (queued behind its object key, or not picked up yet)
  | 'scheduled' // a delayed send, waiting for its start time
  | 'running' // executing, or runnable after a restart
  | 'suspended' // waiting for a timer or a completion, holding no memory
  | 'backing-off' // failed an attempt, waiting to retry
  | 'paused' // stopped by a non-determinism error; needs a fix and an explicit resume
  | 'completed'
  | 'failed';

export const FINISHED: readonly InvocationStatus[] = ['completed', 'failed'];

export interface InvocationRow {
  id: string;
  service: string;
  handler: string;
  /** Object or workflow key; `''` for services. */
  key: string;
  /** Whether the handler holds its object key exclusively. */
  exclusive: boolean;
  status: InvocationStatus;
  input: unknown;
  output?: unknown;
  error?: ErrorInfo;
  /** Idempotency key or workflow-run key; unique among stored invocations. */
  dedupe?: string;
  /** The invocation (and its journal entry) waiting for this one's result. */
  callerId?: string;
  callerEntry?: number;
  /** Attempts that failed so far, and the journal index of the step that failed (-1: the handler). */
  attempt: number;
  retryIndex: number;
  /** When to start (scheduled) or retry (backing-off). */
  runAt?: number;
  createdAt: number;
  modifiedAt: number;
  completedAt?: number;
  /** Finished invocations are deleted after this time. */
  expiresAt?: number;
  /** Arrival order, for FIFO per object key. Assigned by the store. */
  seq?: number;
}

export interface TimerRow {
  invocationId: string;
  /** The journal index of the sleep, or -1 to start or retry the invocation itself. */
  index: number;
  fireAt: number;
}

export interface InvocationFilter {
  status?: InvocationStatus;
  service?: string;
  key?: string;
  limit?: number;
  /** Return invocations with `seq` below this (paging, newest first). */
  beforeSeq?: number;
}

/** A write operation. Results are `undefined` unless stated. */
export type WriteOp =
  /** Result: `{ inserted: true }`, or `{ inserted: false, existing }` when the dedupe key is taken. */
  | { op: 'invocation.insert'; row: InvocationRow }
  | { op: 'invocation.update'; id: string; set: Partial<Omit<InvocationRow, 'id' | 'seq'>> }
  /** Deletes an invocation with its journal and timers. */
  | { op: 'invocation.delete'; id: string }
  /** Inserts or replaces the entry at `index`. */
  | { op: 'journal.put'; invocationId: string; index: number; entry: JournalEntry }
  /**
   * Completes a waiting entry (sleep, call) if it is not done yet, and makes a suspended owner
   * runnable again. Result: `{ completed: boolean; resumed: boolean }`.
   */
  | { op: 'journal.complete'; invocationId: string; index: number; entry: JournalEntry }
  | { op: 'state.set'; service: string; key: string; name: string; value: unknown }
  | { op: 'state.delete'; service: string; key: string; name: string }
  | { op: 'state.clear'; service: string; key: string }
  | { op: 'timer.put'; timer: TimerRow }
  | { op: 'timer.delete'; invocationId: string; index: number };

export type OpResult =
  | undefined
  | { inserted: true }
  | { inserted: false; existing: InvocationRow }
  | { completed: boolean; resumed: boolean };
