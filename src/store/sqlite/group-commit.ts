import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import type { CommitObserver } from '../observe.js';
import type { OpResult } from '../types.js';
import { isBusy } from './busy.js';
import { type CheckpointMode, type CheckpointResult, Checkpointer } from './checkpointer.js';
import type { Notice, PreparedOp, WriteStatements } from './ops.js';
import { WalReserve } from './wal-reserve.js';

/** About 5 ms of work: larger transactions gain no throughput and would stall the event loop. */
const MAX_BATCH_OPS = 1024;

/**
 * fdatasyncs of the WAL in flight at once (see `startSync`). Measured on the 2-core machine
 * (issue 18, 3-step workflow at 32 clients, one core): 1: 4,575/s, 2: 5,418/s, 3: 5,136/s.
 */
const MAX_SYNCS = 2;

/**
 * The WAL's size is read again after at most this many transactions, whatever the estimate
 * says: one transaction with a large payload can write far more frames than its ops suggest.
 */
const MAX_TXNS_UNCHECKED = 32;

/** An fdatasync in flight and the calls it makes durable. */
interface Sync {
  covered: Waiter[];
  done: boolean;
}

/** A pending `write()` call. */
interface Waiter {
  ops: PreparedOp[];
  results: OpResult[];
  /** The messages its ops sent, delivered once it resolves. */
  notices: Notice[];
  resolve: (results: OpResult[]) => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitOptions {
  db: Database.Database;
  stmts: WriteStatements;
  path: string;
  /** Resolve writes only after fdatasync of the WAL (true), or right after the commit (false). */
  durable: boolean;
  /** WAL size, in frames, that triggers a checkpoint. */
  checkpointFrames: number;
  /** The database's page size: a WAL frame is a page and a 24-byte header. */
  pageSize: number;
  busyTimeoutMs: number;
  /** Delivers the messages of a call that resolved (see {@link Notice}). */
  deliver: (notices: Notice[]) => void;
}

/** Counters for benchmarks and diagnostics. Times are in nanoseconds. */
export interface GroupCommitStats {
  transactions: number;
  writes: number;
  ops: number;
  syncs: number;
  checkpoints: number;
  /** Event-loop time spent running transactions. */
  commitNs: number;
  /** Time from starting an fdatasync to its callback. */
  syncNs: number;
  /** Event-loop time spent in checkpoints (only inline ones block it). */
  checkpointNs: number;
  /** Time writes were held back while a checkpoint reset the WAL. */
  pauseNs: number;
  /** Bytes of zeros added to the WAL ahead of the writes (see {@link WalReserve}). */
  walReserved: number;
  /** Times the WAL's size was read (see `checkWal`). */
  walChecks: number;
}

/**
 * Group commit and checkpointing for one SQLite connection running with `synchronous=OFF`.
 *
 * `add()` queues a call. A flush (scheduled with setImmediate) runs every queued call in one
 * transaction, then starts an asynchronous fdatasync of the WAL on the libuv threadpool; when it
 * completes (and every earlier one did), exactly the calls of that transaction resolve. Up to
 * {@link MAX_SYNCS} fdatasyncs run at once; while every slot is taken, calls queue up and go
 * into the next transaction, started as soon as a slot frees: batches as large as the load, and
 * a write waits about one fdatasync, not the rest of one plus a whole one.
 *
 * Checkpoints run on a worker thread (see {@link Checkpointer}) in two phases, so the event loop
 * never blocks on them and writes pause only briefly:
 * 1. PASSIVE, while writes continue: copies everything committed so far into the database file.
 * 2. RESTART, with flushes held back: copies the few frames committed during phase 1 and marks
 *    the WAL fully checkpointed, so the next transaction overwrites it from its start.
 */
export class GroupCommit {
  readonly stats: GroupCommitStats = {
    transactions: 0,
    writes: 0,
    ops: 0,
    syncs: 0,
    checkpoints: 0,
    commitNs: 0,
    syncNs: 0,
    checkpointNs: 0,
    pauseNs: 0,
    walReserved: 0,
    walChecks: 0,
  };

  /** Told of every batch (metrics); set through `Store.observeCommits`. */
  observer: CommitObserver | undefined;

  private readonly db: Database.Database;
  private readonly stmts: WriteStatements;
  private readonly begin: Database.Statement;
  private readonly commitTx: Database.Statement;
  private readonly rollbackTx: Database.Statement;
  private readonly savepoint: Database.Statement;
  private readonly release: Database.Statement;
  private readonly rollbackTo: Database.Statement;
  private readonly walFrames: Database.Statement;
  private readonly walFd: number;
  /** Keeps the WAL pre-extended (durable stores only: it saves fdatasync time). */
  private reserve?: WalReserve;
  /** The next transaction should extend the WAL first. */
  private reserveDue: boolean;

  private queue: Waiter[] = [];
  /** Committed, waiting for the next fdatasync to resolve. */
  private unsynced: Waiter[] = [];
  private flushScheduled = false;
  /** The fdatasyncs in flight, oldest first. */
  private syncs: Sync[] = [];
  /** Flushes are held back while a checkpoint resets the WAL. */
  private paused = false;
  private checkpointing?: Promise<void>;
  private checkpointer?: Checkpointer;
  /** WAL frames at which the next checkpoint starts; raised after a checkpoint that was blocked. */
  private checkpointAt: number;
  private failure?: StoreError;
  /** The WAL's size when last read, and the counters then (see {@link afterFlush}). */
  private walSeen = { frames: 0, transactions: 0, ops: 0 };
  /** The WAL's size is read again once this many transactions or ops have committed. */
  private walCheckAt = { transactions: 0, ops: 0 };
  /** WAL frames per committed op, the most seen lately (decays, so one outlier fades). */
  private framesPerOp = 1;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: GroupCommitOptions) {
    const db = o.db;
    this.db = db;
    this.stmts = o.stmts;
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commitTx = db.prepare('COMMIT');
    this.rollbackTx = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT w');
    this.release = db.prepare('RELEASE w');
    this.rollbackTo = db.prepare('ROLLBACK TO w');
    // NOOP reports the WAL size without checkpointing (SQLite >= 3.51): microseconds, but per
    // transaction that adds up (see checkWal).
    this.walFrames = db.prepare('PRAGMA wal_checkpoint(NOOP)');
    this.checkpointAt = o.checkpointFrames;
    // The caller made sure the WAL exists. While our connection is open no other connection
    // deletes it (an open WAL connection holds a shared lock), so this fd stays valid.
    this.walFd = fs.openSync(`${o.path}-wal`, 'r+');
    if (o.durable) {
      const frameBytes = o.pageSize + 24;
      this.reserve = new WalReserve(
        this.walFd,
        o.pageSize,
        32 + (o.checkpointFrames + Math.ceil((1024 * 1024) / frameBytes)) * frameBytes,
      );
    }
    this.reserveDue = this.reserve !== undefined;
  }

  /** The error that made the store refuse writes, if any. */
  get failed(): StoreError | undefined {
    return this.failure;
  }

  add(ops: PreparedOp[]): Promise<OpResult[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<OpResult[]>((resolve, reject) => {
      this.queue.push({ ops, results: [], notices: [], resolve, reject });
      this.schedule();
    });
  }

  /**
   * Commits and makes durable everything queued, waits for a running checkpoint, then
   * checkpoints the whole WAL into the database file. The connection stays open.
   */
  async drain(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.notifyIfIdle();
    });
    await this.checkpointing;
    await this.checkpointer?.close();
    this.checkpointer = undefined;
    try {
      if (this.failure === undefined) this.checkpointInline('TRUNCATE');
    } finally {
      fs.closeSync(this.walFd);
    }
  }

  private schedule(): void {
    if (this.flushScheduled || this.paused || this.syncSlotsFull()) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: every caller that runs in this turn of the event loop
    // (including continuations of the writes just acknowledged) joins the batch.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.paused || this.syncSlotsFull()) return;
    const batch = this.takeBatch();
    const t0 = process.hrtime.bigint();
    const committed = batch.length > 0 ? this.commit(batch) : [];
    const t1 = process.hrtime.bigint();
    this.stats.commitNs += Number(t1 - t0);
    // The clock readings above serve the stats already: metrics cost no extra one.
    if (this.observer !== undefined && committed.length > 0)
      this.observer.committed(committed.length, Number(t1 - t0) / 1e9);
    if (committed.length > 0) {
      if (this.o.durable) {
        for (const w of committed) this.unsynced.push(w);
        if (this.syncs.length < MAX_SYNCS) this.startSync();
      } else {
        this.resolveAll(committed);
      }
    }
    this.afterFlush();
  };

  /**
   * Starts an fdatasync of the WAL on the libuv threadpool for every call committed and not yet
   * covered by one. Never on the event loop: a lone sequential writer pays the threadpool's
   * hand-off (tens of microseconds) rather than stalling every other request for the whole
   * fdatasync. Up to {@link MAX_SYNCS} run at once: a transaction committed while one is in
   * flight starts the next at once instead of waiting for it (the disk overlaps them), so a
   * write waits about one fdatasync rather than the rest of one plus a whole one. Calls resolve
   * in commit order: those an fdatasync covers once it and every earlier one returned.
   */
  private startSync(): void {
    const sync: Sync = { covered: this.unsynced, done: false };
    this.unsynced = [];
    this.syncs.push(sync);
    this.stats.syncs++;
    const t0 = process.hrtime.bigint();
    // Covers exactly the calls committed before this fdatasync started; on Linux, fdatasync
    // on any fd flushes the file's dirty pages, whoever wrote them.
    fs.fdatasync(this.walFd, (err) => {
      const syncNs = Number(process.hrtime.bigint() - t0);
      this.stats.syncNs += syncNs;
      this.observer?.synced(syncNs / 1e9);
      if (err) {
        // Nothing committed since before this fdatasync can be promised any more.
        const covered = this.syncs.flatMap((x) => x.covered);
        this.syncs = [];
        this.fail(
          new StoreError(
            'store_failed',
            `fdatasync of ${this.o.path}-wal failed: ${err.message}`,
            err,
          ),
          covered,
        );
        this.notifyIfIdle();
        return;
      }
      sync.done = true;
      while (this.syncs[0]?.done) this.resolveAll(this.syncs.shift()!.covered);
      if (this.unsynced.length > 0 && this.syncs.length < MAX_SYNCS) this.startSync();
      else if (this.queue.length > 0) this.schedule();
      else this.notifyIfIdle();
    });
  }

  /**
   * Takes queued calls up to {@link MAX_BATCH_OPS} operations (at least one call): a huge
   * backlog is committed in several transactions, so no single one blocks the event loop for long.
   */
  private takeBatch(): Waiter[] {
    let ops = 0;
    let n = 0;
    while (n < this.queue.length && ops < MAX_BATCH_OPS) ops += this.queue[n++]!.ops.length;
    if (n === this.queue.length) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, n);
  }

  /**
   * Runs every call of the batch in one transaction, and returns the calls that committed (the
   * failed ones are already rejected).
   *
   * A failing call must be rolled back alone while the others commit, which takes a SAVEPOINT
   * per call, but savepoints cost about as much as the ops of a typical call. Calls almost
   * never fail, so the batch first runs without them; if a call fails, the whole transaction is
   * rolled back and the batch runs again with a savepoint per call. The ops are pre-encoded
   * closures over the same values, so the second run is exact.
   */
  private commit(batch: Waiter[]): Waiter[] {
    const committed = this.runBatch(batch, false);
    return committed === 'isolate' ? (this.runBatch(batch, true) as Waiter[]) : committed;
  }

  private runBatch(batch: Waiter[], isolate: boolean): Waiter[] | 'isolate' {
    try {
      this.begin.run();
    } catch (err) {
      this.rejectBatch(
        batch,
        new StoreError(
          'store_failed',
          `cannot start a transaction on ${this.o.path}: ${msg(err)}`,
          err,
        ),
      );
      return [];
    }
    if (this.reserveDue) this.extendWal();
    const committed: Waiter[] = [];
    for (const w of batch) {
      w.results = [];
      w.notices = [];
      this.stmts.outbox = w.notices;
      if (isolate) this.savepoint.run();
      try {
        for (const op of w.ops) w.results.push(op(this.stmts));
        if (isolate) this.release.run();
        committed.push(w);
      } catch (err) {
        if (!this.db.inTransaction) {
          // Some errors (I/O, disk full) make SQLite roll back the whole transaction.
          this.rejectBatch(
            batch,
            new StoreError('store_failed', `a write on ${this.o.path} failed: ${msg(err)}`, err),
          );
          return [];
        }
        if (!isolate && batch.length > 1) {
          this.rollbackTx.run();
          return 'isolate';
        }
        if (isolate) {
          this.rollbackTo.run();
          this.release.run();
        } else {
          this.rollbackTx.run();
          w.reject(asWriteError(err));
          return [];
        }
        w.reject(asWriteError(err));
      }
    }
    try {
      this.commitTx.run();
    } catch (err) {
      if (this.db.inTransaction) this.rollbackTx.run();
      this.rejectBatch(
        batch,
        new StoreError('store_failed', `commit on ${this.o.path} failed: ${msg(err)}`, err),
      );
      return [];
    }
    this.stats.transactions++;
    this.stats.writes += committed.length;
    for (const w of committed) this.stats.ops += w.ops.length;
    return committed;
  }

  /**
   * Every fdatasync slot is taken: calls keep queueing and the next transaction waits for a
   * slot, so one transaction (as large as the load) goes with each fdatasync, rather than a
   * transaction per turn of the event loop (each costing its own commit and WAL frames).
   */
  private syncSlotsFull(): boolean {
    return this.o.durable && this.syncs.length >= MAX_SYNCS;
  }

  /** Inside a write transaction, which holds the WAL write lock that {@link WalReserve} needs. */
  private extendWal(): void {
    this.reserveDue = false;
    try {
      this.reserve!.extend();
      this.stats.walReserved = this.reserve!.written;
    } catch {
      // Only an optimisation: a file system that refuses the zeros (full, say) gets appends,
      // and the commit that follows reports the real trouble if there is one.
      this.reserve = undefined;
    }
  }

  private afterFlush(): void {
    if (
      this.failure === undefined &&
      (this.checkpointing === undefined || this.reserve) &&
      (this.stats.transactions >= this.walCheckAt.transactions ||
        this.stats.ops >= this.walCheckAt.ops)
    )
      this.checkWal();
    if (this.queue.length > 0) this.schedule();
    else this.notifyIfIdle();
  }

  /**
   * Reads the WAL's size, starts a checkpoint or marks the reserve due when it is time, and
   * decides when to read it again. Reading it costs a statement (PRAGMA wal_checkpoint(NOOP),
   * several microseconds): after every transaction, that was a few percent of a sequential
   * invocation's time. So it is read again only once the ops committed since could, at twice
   * the frames per op seen lately, have reached the checkpoint threshold or the end of the
   * reserve; and after {@link MAX_TXNS_UNCHECKED} transactions at most. Reading it late only
   * costs a checkpoint started a little late or a few appends past the reserve.
   */
  private checkWal(): void {
    const [status] = this.walFrames.all() as CheckpointResult[];
    this.stats.walChecks++;
    const { transactions, ops } = this.stats;
    if (status === undefined) {
      this.walCheckAt = { transactions: transactions + 1, ops: ops + 1 };
      return;
    }
    const frames = status.log;
    const seen = this.walSeen;
    // A checkpoint that RESTARTed the WAL in between makes the count go down: no sample then.
    if (frames > seen.frames && ops > seen.ops) {
      this.framesPerOp = Math.max(
        (frames - seen.frames) / (ops - seen.ops),
        this.framesPerOp * 0.9,
      );
    }
    this.walSeen = { frames, transactions, ops };
    if (this.checkpointing === undefined && frames >= this.checkpointAt)
      this.checkpointing = this.checkpoint();
    if (this.reserve?.needed(frames)) this.reserveDue = true;
    const left = Math.min(
      this.checkpointing === undefined ? this.checkpointAt - frames : Infinity,
      this.reserve && !this.reserveDue ? this.reserve.framesLeft(frames) : Infinity,
    );
    const opsLeft = left === Infinity ? Infinity : Math.floor(left / (2 * this.framesPerOp));
    // Due: the next transaction extends the reserve, and the check after it sees how far.
    this.walCheckAt = {
      transactions: transactions + (opsLeft >= 1 && !this.reserveDue ? MAX_TXNS_UNCHECKED : 1),
      ops: ops + Math.max(1, Math.min(opsLeft, Number.MAX_SAFE_INTEGER)),
    };
  }

  /** Never rejects: a failed checkpoint fails the store, a blocked one is retried later. */
  private async checkpoint(): Promise<void> {
    try {
      const result = (await this.checkpointInWorker()) ?? this.checkpointInline('RESTART');
      this.stats.checkpoints++;
      // Blocked by another process's reader: try again once the WAL has grown some more,
      // rather than after every flush.
      this.checkpointAt = result.busy
        ? result.log + this.o.checkpointFrames
        : this.o.checkpointFrames;
    } catch (err) {
      if (!isBusy(err)) {
        this.fail(
          new StoreError('store_failed', `checkpoint of ${this.o.path} failed: ${msg(err)}`, err),
          [],
        );
      }
    } finally {
      this.checkpointing = undefined;
      // The WAL starts over (or did not): read its size after the next transaction.
      this.walCheckAt = { transactions: 0, ops: 0 };
      if (this.queue.length > 0) this.schedule();
      else this.notifyIfIdle();
    }
  }

  /** The two-phase checkpoint on the worker thread; undefined if the thread is unavailable. */
  private async checkpointInWorker(): Promise<CheckpointResult | undefined> {
    const worker = (this.checkpointer ??= new Checkpointer(this.o.path, this.o.busyTimeoutMs));
    if (worker.failed) return undefined;
    let pausedAt: bigint | undefined;
    try {
      await worker.run('PASSIVE');
      // Hold flushes back (an fdatasync in flight is harmless: it only reads the WAL).
      this.paused = true;
      pausedAt = process.hrtime.bigint();
      return await worker.run('RESTART');
    } catch (err) {
      // The thread died (not the checkpoint): the caller checkpoints inline instead.
      if (worker.failed) return undefined;
      throw err;
    } finally {
      if (pausedAt !== undefined) {
        this.paused = false;
        this.stats.pauseNs += Number(process.hrtime.bigint() - pausedAt);
      }
    }
  }

  /**
   * A checkpoint on our own connection, blocking the event loop: at close, and as a fallback
   * when the worker thread is unavailable. Never inside a transaction.
   *
   * Why synchronous=FULL here: SQLite skips every fsync when synchronous=OFF, checkpoints
   * included. A checkpoint that writes pages into the database file without syncing it, then
   * lets the WAL be overwritten, can lose those pages on power loss and corrupt the file. With
   * FULL, SQLite syncs the WAL, copies, syncs the database file, and only then records the
   * frames as checkpointed (the WAL is reused only after that), so every committed page is on
   * disk in the WAL or in the database file at all times.
   */
  private checkpointInline(mode: CheckpointMode): CheckpointResult {
    const t0 = process.hrtime.bigint();
    this.db.pragma('synchronous = FULL');
    // Never wait for readers of other processes here: it would block the event loop. A blocked
    // checkpoint still copies what it can; a later one finishes the job.
    this.db.pragma('busy_timeout = 0');
    try {
      const [row] = this.db.pragma(`wal_checkpoint(${mode})`) as CheckpointResult[];
      return row ?? { busy: 0, log: 0, checkpointed: 0 };
    } finally {
      this.db.pragma(`busy_timeout = ${this.o.busyTimeoutMs}`);
      this.db.pragma('synchronous = OFF');
      this.stats.checkpointNs += Number(process.hrtime.bigint() - t0);
    }
  }

  private notifyIfIdle(): void {
    if (
      this.queue.length > 0 ||
      this.unsynced.length > 0 ||
      this.syncs.length > 0 ||
      this.flushScheduled ||
      this.paused
    )
      return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * After a failed fdatasync the kernel may have dropped the dirty pages (Linux marks them
   * clean), so nothing written since can be trusted to reach disk: refuse all further writes.
   */
  private fail(err: StoreError, committed: Waiter[]): void {
    this.failure ??= err;
    this.rejectAll(committed, err);
    const unsynced = this.unsynced;
    this.unsynced = [];
    this.rejectAll(unsynced, err);
    const queued = this.queue;
    this.queue = [];
    this.rejectAll(queued, err);
  }

  private resolveAll(committed: Waiter[]): void {
    for (const w of committed) {
      w.resolve(w.results);
      if (w.notices.length > 0) this.o.deliver(w.notices);
    }
  }

  /**
   * A transaction failed as a whole: its calls fail, and so do the calls queued behind it. A
   * call queued before the failure was reported may depend on one of the failed calls (the
   * engine starts a new invocation before its insert is durable and queues the handler's
   * writes right behind it): it must not commit without it. Calls made once
   * the failure is known go into the next transaction as usual.
   */
  private rejectBatch(batch: Waiter[], err: StoreError): void {
    this.rejectAll(batch, err);
    const queued = this.queue;
    this.queue = [];
    this.rejectAll(queued, err);
  }

  private rejectAll(waiters: Waiter[], err: StoreError): void {
    for (const w of waiters) w.reject(err);
  }
}

export function asWriteError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError(
    'write_failed',
    `the write failed and none of its operations were applied: ${msg(err)}`,
    err,
  );
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
