import type { ErrorInfo } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import type { ActiveCounts, CommitObserver, KeyQueueDepth } from './observe.js';

/**
 * The Store interface: everything the engine persists goes through it. Adapters (SQLite,
 * PostgreSQL) implement it and must pass the one conformance suite in `conformance.ts`.
 *
 * Writes are typed operations, not SQL, and are applied by `write()` in order: a call's
 * operations in their order, and calls in the order they were made wherever they touch the same
 * invocation, object key or entry (PostgreSQL with `pipeline` > 1 commits unrelated calls in
 * parallel batches). An adapter groups the writes of many concurrent callers into shared
 * commits (group commit): a `write()` resolves only once its operations are durable, and
 * operations from calls that resolved earlier are never lost when a later one is. A commit that
 * fails as a whole also fails the related calls queued behind it.
 */
export interface Store {
  /**
   * True when several processes may share this store at once (PostgreSQL): the engine then
   * claims invocations, takes object keys through the store and wakes other processes through
   * {@link Store.listen}. False for an embedded store owned by one process (SQLite).
   */
  readonly shared: boolean;

  /**
   * Shared stores: ties every later `write()` to the registration of process `processId`: a
   * write commits only while that process is registered (not reaped), and is otherwise rejected
   * as a whole with code `process_fenced`, calling `onFenced(processId)`. Writes that register
   * a process (`process.register`) are not checked. Stores owned by one process omit it.
   */
  fenceWrites?(processId: string, onFenced: (processId: string) => void): void;

  /** Applies the operations atomically and durably; resolves with one result per operation. */
  write(ops: WriteOp[]): Promise<OpResult[]>;

  /**
   * Delivers the messages sent with `notify` ops to process `processId` (and broadcasts) until
   * the returned function is called. Messages are sent when their write commits. An embedded
   * store (one process) delivers them only to listeners of the same store instance.
   */
  listen(
    processId: string,
    onMessage: (message: ClusterMessage) => void,
  ): Promise<() => Promise<void>>;

  getInvocation(id: string): Promise<InvocationRow | undefined>;
  /** The invocation holding a deduplication key (idempotency key or workflow run), if any. */
  findByDedupe(dedupe: string): Promise<InvocationRow | undefined>;
  /** Every journal entry of an invocation, in index order. */
  getJournal(id: string): Promise<Array<[number, JournalEntry]>>;
  getState(service: string, key: string, name: string): Promise<unknown>;
  getStateKeys(service: string, key: string): Promise<string[]>;
  /**
   * The keys of `service` that have object state, in key order: keys after `after`, at most
   * `limit` (default 100). For the admin API's state browser.
   */
  listStateKeys(service: string, options?: { after?: string; limit?: number }): Promise<string[]>;
  /** Invocations to pick up after a restart: every one that is running or pending, oldest first. */
  listRunnable(owner?: string): Promise<InvocationRow[]>;
  /** Exclusive invocations holding or waiting for an object key: running, suspended, backing-off, paused or pending. */
  listKeyHolders(): Promise<
    Array<Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>>
  >;
  /** Timers that fire at or before `before`, earliest first, at most `limit`. */
  dueTimers(before: number, limit: number, owner?: string): Promise<TimerRow[]>;
  /** Finished invocations whose retention ended at or before `now`, at most `limit`. */
  expired(now: number, limit: number): Promise<string[]>;
  /**
   * Invocations matching `filter`. A list never reads blobs: an input or output stored out of
   * line (see store/payloads.ts) comes as a `LargePayload` giving its size. Every other read
   * returns values themselves.
   */
  listInvocations(filter: InvocationFilter): Promise<InvocationRow[]>;
  /** Metrics: tells `observer` of every committed batch from now on (undefined: stop). */
  observeCommits?(observer: CommitObserver | undefined): void;
  /** Metrics: unfinished invocations by status, and timers pending. */
  countActive?(): Promise<ActiveCounts>;
  /**
   * Metrics: the object keys with the most pending exclusive invocations waiting for them, most
   * first, at most `limit` (among the oldest `KEY_QUEUE_SCAN_LIMIT` pending invocations).
   */
  keyQueueDepths?(limit: number): Promise<KeyQueueDepth[]>;
  /** A durable promise of a workflow key, or undefined if nothing resolved or awaited it yet. */
  getPromise(service: string, key: string, name: string): Promise<PromiseRow | undefined>;
  /**
   * A value of the shared key-value space (extensions' state: circuit breakers, rate limits,
   * webhook endpoints), or undefined when absent. Expiry is the caller's to judge (the store
   * knows no clock): an expired value is returned, with its `expiresAt`, until `kv.purge`.
   */
  getKv(scope: string, key: string): Promise<KvRow | undefined>;
  /** The values of a scope in key order: keys after `after`, starting with `prefix`; default limit 100. */
  listKv(
    scope: string,
    options?: { prefix?: string; after?: string; limit?: number },
  ): Promise<Array<KvRow & { key: string }>>;
  /** Figures of flow-control queue `queue` (zeros for one never used). */
  queueStats(queue: string): Promise<QueueStats>;
  close(): Promise<void>;
}

export type InvocationStatus =
  | 'pending' // accepted, waiting to start (queued behind its object key, or not picked up yet)
  | 'queued' // accepted into a flow-control queue, waiting for its admission (queue.admit)
  | 'scheduled' // a delayed send, waiting for its start time
  | 'running' // executing, or runnable after a restart
  | 'suspended' // waiting for a timer or a completion, holding no memory
  | 'backing-off' // failed an attempt, waiting to retry
  | 'paused' // stopped by a non-determinism error; needs a fix and an explicit resume
  | 'completed'
  | 'failed';

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
  /** Cancellation: requested by an operator, then delivered to the handler (once). */
  cancel?: 'requested' | 'delivered';
  /** A short outcome the handler reports beyond its status, e.g. a saga's `compensated`. */
  outcome?: string;
  /** The process that executes it (shared stores only). */
  owner?: string;
  /**
   * The W3C `traceparent` of the span this invocation's spans are children of (the ingress
   * request's, or the caller's call span), so an attempt in any process continues its trace.
   */
  trace?: string;
  /** Arrival order, for FIFO per object key. Assigned by the store. */
  seq?: number;
}

export interface TimerRow {
  invocationId: string;
  /**
   * The journal index of the sleep, or -1 to start or retry the invocation itself, or -2 to
   * start a debounced invocation once its (movable) `runAt` is due (engine/timer-firing.ts).
   */
  index: number;
  fireAt: number;
}

/**
 * What `listInvocations` returns: invocations matching every field that is set, newest (highest
 * `seq`) first. Adapters serve each field through an index (migration 9), so paging stays fast
 * at millions of invocations.
 */
export interface InvocationFilter {
  /** One status, or any of several (an empty list matches every status). */
  status?: InvocationStatus | readonly InvocationStatus[];
  service?: string;
  handler?: string;
  key?: string;
  /** The `code` of the invocation's `error` (the last failure of a retrying one, or its end). */
  errorCode?: string;
  /** `createdAt` at or after this (epoch ms). */
  createdSince?: number;
  /** `createdAt` at or before this (epoch ms). */
  createdUntil?: number;
  limit?: number;
  /** Return invocations with `seq` below this (paging, newest first). */
  beforeSeq?: number;
}

/** A write operation. Results are `undefined` unless stated. */
export type WriteOp =
  /**
   * Result: `{ inserted: true }`, or `{ inserted: false, existing }` when the dedupe key is taken.
   * With `acquireKey` (shared stores; an exclusive, pending row), the insert also takes the
   * row's object key like `key.acquire`, in the same op: when the key was free the row is
   * stored `running` and holds it, else it is stored as given (queued behind the holder).
   * Result then `{ inserted: true, acquired }`; on a dedupe conflict no key is taken.
   */
  | { op: 'invocation.insert'; row: InvocationRow; acquireKey?: boolean }
  | {
      op: 'invocation.update';
      id: string;
      set: Partial<Omit<InvocationRow, 'id' | 'seq'>>;
      /**
       * Only when the invocation's status is this one at the time of the write: a transition
       * (a fired start or retry timer making its invocation runnable) that must not overwrite a
       * concurrent one (a cancellation). Result then `{ updated: boolean }`.
       */
      ifStatus?: InvocationStatus;
    }
  /**
   * Suspends a running invocation (status `suspended`, `modifiedAt`) unless one of the journal
   * entries it waits for (`waitingFor`, indexes) is already done: a completion that committed
   * while the invocation was going to sleep found it running, so it did not resume it, and the
   * suspension must not strand it. Result: `{ suspended: boolean }`; when false, the caller
   * runs the invocation again.
   */
  | { op: 'invocation.suspend'; id: string; waitingFor: number[]; modifiedAt: number }
  /**
   * A precondition: fails the whole `write()` call with code `precondition_failed`, none of its
   * ops applied, unless invocation `id` exists with one of the statuses in `status`. Put it first:
   * the ops after it then apply only while it holds, serialized with a concurrent change of the
   * row (an operator's cancel of an invocation that has not started must not finish one another
   * process just started, nor a kill overwrite an outcome recorded meanwhile). With `runAt`, the
   * row's `runAt` must also equal it (a debounced start expects the time it found due: a send
   * that moved it later meanwhile wins, and the start waits again). Result: none.
   */
  | { op: 'invocation.expect'; id: string; status: InvocationStatus[]; runAt?: number }
  /** Deletes an invocation with its journal, timers and promise waiters (not its object state or promises). */
  | { op: 'invocation.delete'; id: string }
  /** Inserts or replaces the entry at `index`. */
  | { op: 'journal.put'; invocationId: string; index: number; entry: JournalEntry }
  /**
   * Completes a waiting entry (sleep, call) if it is not done yet, and makes a suspended owner
   * runnable again. Result: `{ completed: boolean; resumed: boolean }`.
   */
  | {
      op: 'journal.complete';
      invocationId: string;
      index: number;
      entry: JournalEntry;
      /**
       * Shared stores: when the entry was completed and its invocation is owned by a process
       * other than this one, send that owner `{ type: 'wake', invocationId }` on commit.
       */
      notifyFrom?: string;
    }
  | { op: 'state.set'; service: string; key: string; name: string; value: unknown }
  | { op: 'state.delete'; service: string; key: string; name: string }
  | { op: 'state.clear'; service: string; key: string }
  /**
   * Resolves or rejects a durable promise of a workflow key, if it is not completed yet, and
   * completes every journal entry waiting for it (making suspended waiters runnable).
   * Result: `{ completed: boolean; waiters: PromiseWaiter[] }` (`completed: false` and no
   * waiters when it was already completed).
   */
  | {
      op: 'promise.complete';
      service: string;
      key: string;
      name: string;
      value?: unknown;
      error?: ErrorInfo;
      /** Shared stores: wake the owners of completed waiters other than this process. */
      notifyFrom?: string;
    }
  /**
   * Records that journal entry `index` of `invocationId` waits for a durable promise. If the
   * promise is already completed, the entry is stored completed (value or error) instead, and
   * the result says so: `{ done: true; value?; error? }`; otherwise the entry is stored as
   * given (not done) and the result is `{ done: false }`.
   */
  | {
      op: 'promise.await';
      service: string;
      key: string;
      name: string;
      invocationId: string;
      index: number;
      entry: JournalEntry;
    }
  /** Sends a message when this write commits: to process `to`, or to every process. */
  | { op: 'notify'; message: ClusterMessage; to?: string }
  /** Registers (or re-registers) a process with a lease. */
  | { op: 'process.register'; id: string; leaseUntil: number }
  /** Extends a process's lease. Result: `{ alive: false }` if it was reaped meanwhile (and is not re-created). */
  | { op: 'process.heartbeat'; id: string; leaseUntil: number }
  /**
   * Unregisters a process at once, whatever its lease (a clean stop): its unfinished
   * invocations then belong to an owner nobody registered, which the next reap of any process
   * adopts, and its writes from then on are fenced as a reaped process's. Result: undefined.
   */
  | { op: 'process.leave'; id: string }
  /**
   * Removes processes whose lease ended before `now` (other than `by`) and makes `by` the owner
   * of their unfinished invocations, and of those of any other owner that is not registered
   * (written by a process after it was reaped). Result: `{ reaped: string[]; invocations:
   * string[] }`: the owners removed or found unregistered, and the invocations taken over
   * (oldest first). A shared store may leave an invocation that another write holds locked to
   * its next reap rather than wait for it. With `limit`, at most that many invocations are
   * taken (the oldest of an owner's first); the rest are then an unregistered owner's, taken by
   * the next reap: a caller that got `limit` of them reaps again.
   */
  | { op: 'process.reap'; now: number; by: string; limit?: number }
  /**
   * Takes an object key for an exclusive invocation unless another holds it. Result:
   * `{ acquired: boolean; holder?: string; started?: true }`: `started` when the invocation
   * was waiting (`pending` or `scheduled`) and this op set it `running` (its caller launches
   * it; a repeated acquire of a started one starts nothing). Must serialize with `key.release` of the same key,
   * so that an invocation queued concurrently with a release is never left without a holder.
   * Never takes a free key for an invocation that has finished (`{ acquired: false }`, no
   * holder): an acquire sent while it was pending may arrive after it got the key from a
   * release, ran and finished, and a key held by a finished invocation is never released.
   */
  | { op: 'key.acquire'; service: string; key: string; invocationId: string }
  /**
   * Releases a key held by `invocationId` and hands it to the next pending exclusive invocation
   * of that key (lowest seq), which becomes owned by `owner` and `running` (started in the same
   * op: a decision that expects it pending, such as a cancel, must find it changed).
   * Result: `{ next?: InvocationRow }`.
   */
  | { op: 'key.release'; service: string; key: string; invocationId: string; owner: string }
  /**
   * Stores a value of the key-value space. With `expectVersion`, only if the stored version is
   * that (0: absent) — compare-and-set for read-modify-write across processes.
   * Result: `{ ok: boolean; version: number }`: the new version when written, else the
   * version found (0 if none).
   */
  | {
      op: 'kv.put';
      scope: string;
      key: string;
      value: unknown;
      expectVersion?: number;
      /** Epoch ms after which the value is stale and `kv.purge` deletes it. */
      expiresAt?: number;
    }
  /** Deletes a value (with `expectVersion`, only at that version). Result: `{ ok: boolean; version: number }`. */
  | { op: 'kv.delete'; scope: string; key: string; expectVersion?: number }
  /** Deletes values whose `expiresAt` is at or before `before`, at most `limit` (default 1000). Result: `{ deleted: number }`. */
  | { op: 'kv.purge'; before: number; limit?: number }
  | { op: 'timer.put'; timer: TimerRow }
  | { op: 'timer.delete'; invocationId: string; index: number }
  /**
   * Puts a `queued` invocation inserted in the same write into flow-control queue `queue`, under
   * fairness/concurrency key `key` (`''`: none), with `priority` (higher first within a key).
   * Nothing is stored when no `queued` invocation `invocationId` exists (its insert met a dedupe
   * conflict). With `admit`: when nothing waits in the queue and its limits allow one more
   * start, the invocation is admitted at once instead (`running`, owned by `admit.owner`, its
   * start counted as `queue.admit` counts it), serialized with admissions of the queue — the
   * fast path of a queue that is not full. Result: `{ admitted: boolean }`.
   */
  | {
      op: 'queue.put';
      invocationId: string;
      queue: string;
      key: string;
      priority: number;
      admit?: Omit<QueueAdmit, 'queue' | 'max'>;
    }
  /**
   * Admits waiting invocations of queue `queue` within its limits (see {@link QueueAdmit}):
   * each admitted one goes from `queued` to `running`, owned by `owner`. Must be the only op of
   * its `write()` call. Result: {@link QueueAdmitResult}.
   */
  | ({ op: 'queue.admit' } & QueueAdmit);

/** A limit of starts: at most `limit` in any `periodMs` (a sliding window). */
export interface StartRate {
  limit: number;
  periodMs: number;
}

/** The limits one admission applies (the queue's declaration, the same in every process). */
export interface QueueAdmit {
  queue: string;
  /** The process that will run what is admitted (shared stores). */
  owner?: string;
  now: number;
  /** Admitted and unfinished invocations of the queue at most. Default: no limit. */
  concurrency?: number;
  /** Admitted and unfinished invocations per key at most. Default: no limit. */
  keyConcurrency?: number;
  /** Starts of the queue. */
  rate?: StartRate;
  /** Starts per key. */
  keyRate?: StartRate;
  /** Admit at most this many in this call. */
  max: number;
}

/** What a `queue.admit` answers. */
export interface QueueAdmitResult {
  /** The invocations admitted, now `running` (oldest turn first). */
  admitted: InvocationRow[];
  /** When a rate limit will let a waiting invocation start (epoch ms), if one holds one back. */
  retryAt?: number;
  /** Whether invocations still wait in the queue after this admission. */
  waiting: boolean;
}

/** A queue's figures, for the admin API. */
export interface QueueStats {
  /** Invocations waiting for admission. */
  waiting: number;
  /** Admitted and unfinished. */
  running: number;
  /** Keys with waiting invocations. */
  keys: number;
  /** `createdAt` of the oldest waiting invocation. */
  oldestWaitingSince?: number;
}

/** A value of the key-value space with its version (1 on first write, +1 on each write). */
export interface KvRow {
  value: unknown;
  version: number;
  expiresAt?: number;
}

/** A durable promise's stored state. */
export interface PromiseRow {
  done: boolean;
  value?: unknown;
  error?: ErrorInfo;
}

/** A journal entry completed by a `promise.complete`. */
export interface PromiseWaiter {
  invocationId: string;
  index: number;
  /** The waiter's owner (shared stores). */
  owner?: string;
  /** The waiter was suspended and is now runnable. */
  resumed: boolean;
}

/** What processes sharing a store tell each other. */
export type ClusterMessage =
  /** An invocation you own got a completion (or was made runnable): deliver it or resume it. */
  | { type: 'wake'; invocationId: string }
  /**
   * An invocation finished: wake whoever waits for its result. `from`: the process that
   * finished it, which settles its own waiters without the message.
   */
  | { type: 'done'; invocationId: string; from?: string }
  /** Cancel or kill an invocation you own. */
  | { type: 'cancel' | 'kill'; invocationId: string }
  /** An operator paused an invocation you own (the status is durable): stop its attempt. */
  | { type: 'pause'; invocationId: string }
  /**
   * Process `process` left the cluster (a clean stop, `process.leave` committed with this
   * message): reap now, rather than at the next period, to adopt what it owned.
   */
  | { type: 'left'; process: string };

/** What a message is about: the invocation it names, or the process that left. */
export function messageSubject(m: ClusterMessage): string {
  return m.type === 'left' ? m.process : m.invocationId;
}

export type OpResult =
  | undefined
  | { alive: boolean }
  | { reaped: string[]; invocations: string[] }
  | { acquired: boolean; holder?: string }
  | { next?: InvocationRow }
  | QueueAdmitResult
  | { admitted: boolean }
  | { completed: boolean; waiters: PromiseWaiter[] }
  | { done: boolean; value?: unknown; error?: ErrorInfo }
  | { ok: boolean; version: number }
  | { deleted: number }
  | { updated: boolean }
  | { inserted: true; acquired?: boolean }
  | { inserted: false; existing: InvocationRow }
  | { suspended: boolean }
  | { completed: boolean; resumed: boolean; owner?: string };
