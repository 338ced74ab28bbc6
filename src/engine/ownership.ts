import { errorMessage } from '../core/errors.js';
import type { ClusterMessage, InvocationRow, OpResult, WriteOp } from '../store/types.js';
import { Cluster } from './cluster.js';
import type { Kernel } from './kernel.js';
import { NO_ENTRIES } from './kernel.js';
import { KeyLocks } from './locks.js';
import { pausedElsewhere } from './pause.js';
import type { Runner } from './runner.js';

/**
 * Who runs an invocation and who holds an object key. The engine asks these questions at a
 * handful of points (admitting, starting, finishing, completing) and two strategies answer:
 *
 * - {@link EmbeddedOwnership}: one process owns its store (SQLite). Every invocation is its
 *   own; object keys are locks in memory, rebuilt from the store at start.
 * - {@link ClusterOwnership}: processes share the store (PostgreSQL). Each invocation belongs
 *   to one process (`owner`); object keys are held in the store, taken by the insert or a
 *   `key.acquire` and handed on by the finishing write; processes tell each other of
 *   completions through the store's notifications.
 */
export interface Ownership {
  /** This process's id in the cluster sharing the store; undefined on an embedded store. */
  readonly processId: string | undefined;
  /**
   * A dedupe key's holder is found by the insert itself (a shared store answers a taken key
   * with its holder): no lookup first, which would cost a round trip per invocation.
   */
  readonly dedupeByInsert: boolean;
  /** Recovers (embedded) or joins the cluster and takes over what dead processes left. */
  start(): Promise<void>;
  /**
   * A clean stop: waits up to `graceMs` for the step bodies in flight; then (cluster) leaves,
   * and its invocations are taken over at once, unless a body still ran.
   */
  stop(graceMs: number): Promise<void>;
  /** Stops as a crash would: a cluster lease is not given up, it expires. */
  crash(): void;
  /** Whether `row` may run in this process (a row read before a lease was lost may not). */
  runsHere(row: InvocationRow): boolean;
  /** Whether an invocation with this owner runs in another process (reach it by message). */
  elsewhere(owner: string | undefined): boolean;
  /**
   * A new invocation: sets its owner and, unless `delayed`, whether it starts at once, and
   * returns its insert. `byStore`: whether it starts was decided by the store (the object
   * key is taken by the insert), so the caller waits for the insert's answer.
   */
  admit(row: InvocationRow, delayed: boolean): { insert: WriteOp; byStore: boolean };
  /** The insert of a new invocation failed: the key it took (or queued for) is let go. */
  insertFailed(row: InvocationRow): void;
  /** Starts a pending invocation now, or once its object key is free. */
  enqueue(row: InvocationRow): void;
  /** Takes a not-yet-started invocation out of its object key's queue. */
  dequeue(row: InvocationRow): void;
  /** See `InvocationHost.mayStartStep`. */
  mayStartStep(runner: Runner): boolean;
  /** What the write recording an invocation's outcome carries besides (notices, key release). */
  finishOps(row: InvocationRow): WriteOp[];
  /** The outcome is durable: hand the object key on. `results` answer the finishing write. */
  finished(row: InvocationRow, results: OpResult[]): void;
}

/** One process, its own store: locks in memory. */
export class EmbeddedOwnership implements Ownership {
  readonly processId = undefined;
  readonly dedupeByInsert = false;
  private readonly locks = new KeyLocks<InvocationRow>();

  constructor(private readonly k: Kernel) {}

  /** Recovers everything that was in flight: key holders first, then what was runnable. */
  async start(): Promise<void> {
    const { k } = this;
    for (const h of await k.store.listKeyHolders()) {
      if (h.status !== 'pending') this.locks.acquire(lockKey(h), h.id, h as InvocationRow);
    }
    for (const row of await k.store.listRunnable()) {
      if (!k.registry.get(row.service)) {
        k.log(
          'warn',
          `cannot recover ${row.id}: "${row.service}" is no longer registered; it stays ${row.status}`,
        );
        continue;
      }
      if (row.status === 'running') k.admission.resume(row);
      else this.enqueue(row);
    }
  }

  /**
   * A clean stop lets the step bodies in flight finish and journal (at most `stopGrace`; none
   * starts once the engine is stopping), so the next start replays their results rather than
   * running them again.
   */
  async stop(ms: number): Promise<void> {
    if (!(await drainBodies(this.k, ms)))
      this.k.log(
        'warn',
        `step bodies still running after ${ms} ms at stop (stopGrace): their steps run again at the next start`,
      );
  }

  crash(): void {}

  runsHere(): boolean {
    return true;
  }

  elsewhere(): boolean {
    return false;
  }

  admit(row: InvocationRow, delayed: boolean): { insert: WriteOp; byStore: boolean } {
    if (!delayed && (!row.exclusive || this.locks.acquire(lockKey(row), row.id, row)))
      row.status = 'running';
    return { insert: { op: 'invocation.insert', row: { ...row } }, byStore: false };
  }

  insertFailed(row: InvocationRow): void {
    if (row.status === 'pending') this.dequeue(row);
    // It may have run to its end already (its outcome's write failed with the insert): the
    // key it took must not stay held by an invocation that does not exist.
    else if (row.status === 'running') this.release(row);
  }

  enqueue(row: InvocationRow): void {
    if (row.exclusive && !this.locks.acquire(lockKey(row), row.id, row)) return;
    this.k.admission.launch(row, NO_ENTRIES);
  }

  dequeue(row: InvocationRow): void {
    if (row.exclusive) this.locks.remove(lockKey(row), row.id, (r) => r.id);
  }

  mayStartStep(): boolean {
    // Stopping: the invocation resumes at the next start (see stop).
    return !this.k.stopping;
  }

  finishOps(): WriteOp[] {
    return [];
  }

  finished(row: InvocationRow): void {
    this.release(row);
  }

  private release(row: InvocationRow): void {
    if (!row.exclusive) return;
    const next = this.locks.release(lockKey(row), row.id, (r) => r.id);
    if (next) this.k.admission.launch(next, NO_ENTRIES);
  }
}

/** Processes sharing the store: ownership and keys live in the store (see `Cluster`). */
export class ClusterOwnership implements Ownership {
  readonly dedupeByInsert = true;
  private readonly cluster: Cluster;
  private sweepFailed = false;

  constructor(
    private readonly k: Kernel,
    leaseMs: number,
  ) {
    this.cluster = new Cluster(
      k.store,
      k.clock,
      {
        log: (level, message) => k.log(level, message),
        onMessage: (m) => this.onMessage(m),
        onTakeover: (ids) => this.takeOver(ids),
        onFenced: () => this.fence(),
        onRejoined: () => this.rejoined(),
        onSweep: () => this.sweep(),
      },
      leaseMs,
    );
  }

  get processId(): string {
    return this.cluster.processId;
  }

  /** A new process owns nothing yet: it takes over what dead processes left behind. */
  start(): Promise<void> {
    return this.cluster.start();
  }

  /**
   * A clean stop hands this process's invocations over at once: the engine is stopping, so no
   * step body starts and nothing launches any more; once the bodies in flight have settled
   * (their results queued for the store ahead of the leave) the process leaves the cluster and
   * the others adopt its invocations now. A body still running after `stopGrace` keeps the
   * lease: the others adopt once it has expired, as after a crash, so no two processes run the
   * invocation's code at once. (The heartbeats go on while it waits: the lease holds however
   * long the grace.)
   */
  async stop(ms: number): Promise<void> {
    this.cluster.quiesce();
    const drained = await drainBodies(this.k, ms);
    if (!drained)
      this.k.log(
        'warn',
        `step bodies still running after ${ms} ms (stopGrace): process ${this.cluster.processId} keeps its lease, and its invocations are taken over once it has expired`,
      );
    await this.cluster.stop(drained);
  }

  crash(): void {
    this.cluster.abandon();
  }

  /**
   * Also false while the lease is in doubt (the check fences the process, and the row then
   * names an old id): a process waking from a stall must not start a handler, whose code up
   * to its first journaled call runs unguarded, for an invocation others may be adopting.
   */
  runsHere(row: InvocationRow): boolean {
    return row.owner === this.cluster.processId && this.cluster.checkLease();
  }

  elsewhere(owner: string | undefined): boolean {
    return owner !== undefined && owner !== this.cluster.processId;
  }

  admit(row: InvocationRow, delayed: boolean): { insert: WriteOp; byStore: boolean } {
    row.owner = this.cluster.processId;
    if (delayed) return { insert: { op: 'invocation.insert', row: { ...row } }, byStore: false };
    // The key is taken through the store by the insert itself, which stores the row 'running'
    // when it gets the key (no second write to start it).
    if (row.exclusive)
      return {
        insert: { op: 'invocation.insert', row: { ...row }, acquireKey: true },
        byStore: true,
      };
    row.status = 'running';
    return { insert: { op: 'invocation.insert', row: { ...row } }, byStore: false };
  }

  /** The store took nothing: an insert that failed holds no key. */
  insertFailed(): void {}

  enqueue(row: InvocationRow): void {
    const { k } = this;
    if (!row.exclusive) {
      k.admission.launch(row, NO_ENTRIES);
      return;
    }
    const me = this.cluster.processId;
    const acquire: WriteOp = {
      op: 'key.acquire',
      service: row.service,
      key: row.key,
      invocationId: row.id,
    };
    // The acquire started it (set it running) only if it was waiting: an acquire repeated for
    // one that got the key from a release meanwhile starts nothing (whoever got it runs it).
    // Run it only if it is still this process's.
    const launchIfStarted = async (): Promise<void> => {
      const fresh = await k.store.getInvocation(row.id);
      if (fresh?.owner === me && fresh.status === 'running') k.admission.launch(fresh, NO_ENTRIES);
    };
    k.store
      .write([acquire])
      .then(async ([r]) => {
        if ((r as { started?: boolean }).started) await launchIfStarted();
      })
      .catch((err: unknown) => {
        k.log('warn', `could not take the key of ${row.id}: ${errorMessage(err)}`);
        // Nothing else would start it: its timer (if it had one) is gone.
        k.retryLater(`starting ${row.id}`, async () => {
          const fresh = await k.store.getInvocation(row.id);
          const waiting = fresh?.status === 'pending' || fresh?.status === 'scheduled';
          if (fresh?.owner === me && waiting) this.enqueue(fresh);
        });
      });
  }

  /** Queued in the store: its finishing write (or a cancel's) takes it out. */
  dequeue(): void {}

  /**
   * A step body starts only while this process's lease is certain and the invocation is still
   * this process's (see `Cluster.checkLease`); otherwise another process may be running the
   * same invocation.
   */
  mayStartStep(runner: Runner): boolean {
    // Stopping: the invocation is about to be handed over (see stop).
    if (this.k.stopping) return false;
    return this.cluster.checkLease() && runner.row.owner === this.cluster.processId;
  }

  finishOps(row: InvocationRow): WriteOp[] {
    const me = this.cluster.processId;
    // Whoever waits for this result in another process hears it on commit.
    const ops: WriteOp[] = [
      { op: 'notify', message: { type: 'done', invocationId: row.id, from: me } },
    ];
    if (row.exclusive)
      ops.push({
        op: 'key.release',
        service: row.service,
        key: row.key,
        invocationId: row.id,
        owner: me,
      });
    return ops;
  }

  finished(row: InvocationRow, results: OpResult[]): void {
    const next = row.exclusive
      ? (results[results.length - 1] as { next?: InvocationRow }).next
      : undefined;
    if (next) this.k.admission.launch(next, NO_ENTRIES);
  }

  // ---- messages from other processes -------------------------------------------------------

  private onMessage(m: ClusterMessage): void {
    const { k } = this;
    if (k.stopping) return;
    switch (m.type) {
      // A failure to act on a message (the store unreachable) is left to the sweep, or retried.
      case 'wake':
        k.background(`waking ${m.invocationId}`, this.wake(m.invocationId));
        break;
      case 'done':
        // Its own 'done' can arrive before the write's answer that settles the waiters here:
        // reading the row then would be a wasted round trip per invocation.
        if (m.from !== this.cluster.processId && k.results.has(m.invocationId))
          k.background(`reading ${m.invocationId}`, k.results.settleFromStore(m.invocationId));
        break;
      case 'cancel': {
        const id = m.invocationId;
        const cancel = (): Promise<void> => k.control.cancelOwned(id);
        cancel().catch((err: unknown) => {
          k.log('warn', `could not cancel ${id}: ${errorMessage(err)}; trying again`);
          k.retryLater(`cancelling ${id}`, cancel);
        });
        break;
      }
      case 'pause':
        pausedElsewhere(k, m.invocationId);
        break;
      case 'left':
        k.background(`adopting what ${m.process} left`, this.cluster.reapNow());
        break;
      case 'kill': {
        const runner = k.active.get(m.invocationId);
        if (runner) k.outcomes.abandon(runner);
        // The killer wrote its outcome: no write of this process's is in flight for it.
        k.settling.delete(m.invocationId);
        break;
      }
    }
  }

  /** Another process completed an entry of an invocation this process owns. */
  private async wake(id: string): Promise<void> {
    const { k } = this;
    const runner = k.active.get(id);
    if (!runner) return k.admission.resumeById(id);
    const waiting = runner.waitingIndexes();
    if (waiting.length === 0) return;
    const journal = await k.store.getJournal(id);
    // It suspended while the journal loaded: the completion must not go to the dropped runner.
    if (k.active.get(id) !== runner) return k.admission.resumeById(id);
    for (const [index, entry] of journal) {
      if (entry.done && waiting.includes(index)) runner.deliver(index, entry);
    }
  }

  /**
   * Invocations of a process whose lease ended (or of an owner that is not registered) are now
   * this process's: run what was running. They are this process's in the store already, so
   * when a read fails (an outage) the sweep starts what is left.
   */
  private async takeOver(ids: string[]): Promise<void> {
    const { k } = this;
    try {
      // One read of what may run (this process's running and pending rows), not one per
      // invocation taken: most of a dead process's invocations wait (suspended, scheduled,
      // queued), and reading 40,000 of them one by one took about 6 s of a restart.
      const taken = new Set(ids);
      for (const row of await k.store.listRunnable(this.cluster.processId)) {
        if (!taken.has(row.id) || k.active.has(row.id) || k.loading.has(row.id)) continue;
        if (row.status === 'running') k.admission.resume(row);
        else this.enqueue(row);
      }
    } finally {
      // Their timers (sleeps, retries, delayed starts) fire here from now on.
      k.timers.reload();
    }
  }

  /**
   * This process lost its lease: its invocations run elsewhere now. Its runners stop without
   * another write (the store refuses the old id's writes anyway), and its timers, which are
   * other processes' now, are dropped; the ones of its new id load when it has joined again.
   */
  private fence(): void {
    const { k } = this;
    for (const runner of [...k.active.values()]) {
      k.outcomes.abandon(runner);
      // No status write of theirs follows (none would land): nothing is settling. Left marked,
      // they would never be resumed here once taken over under the new id.
      k.settling.delete(runner.row.id);
    }
    k.timers.stop();
  }

  private rejoined(): void {
    if (this.k.stopping) return;
    this.k.timers.start().catch(() => this.k.timers.reload());
  }

  /**
   * The fallback for a lost message: results waited for here, and invocations of this process
   * made runnable while nobody told it.
   */
  private async sweep(): Promise<void> {
    if (this.k.stopping) return;
    try {
      await this.sweepOnce();
    } catch (err) {
      this.sweepFailed = true;
      throw err;
    }
    if (this.sweepFailed) {
      // The store is back after an outage: timers whose writes' answers were lost may be
      // durable without being held here.
      this.sweepFailed = false;
      this.k.timers.reload();
    }
  }

  private async sweepOnce(): Promise<void> {
    const { k } = this;
    for (const id of k.results.waitedFor()) {
      // Results of invocations running here arrive without the store's help.
      if (!k.active.has(id) && !k.loading.has(id)) await k.results.settleFromStore(id);
    }
    for (const row of await k.store.listRunnable(this.cluster.processId)) {
      if (k.active.has(row.id) || k.loading.has(row.id) || k.settling.has(row.id)) continue;
      if (row.status === 'running') k.admission.resume(row);
      // Pending for a while: its start may have failed to reach the store (a dropped
      // connection). Try again; one queued behind its key's holder just stays queued.
      else if (row.status === 'pending' && row.modifiedAt < k.clock.now() - 2000) this.enqueue(row);
    }
    // A timer write (a retry, a delayed start) whose answer an outage lost may be durable but
    // not held here, leaving its row 'backing-off' or 'scheduled' forever: overdue timers the
    // timer service does not know make it reload.
    await k.timers.reloadIfStranded(2000);
  }
}

function lockKey(row: Pick<InvocationRow, 'service' | 'key'>): string {
  return `${row.service}\u0000${row.key}`;
}

/**
 * Waits until no step body of this engine is in flight (those of live runners and those ended
 * attempts left running), at most `ms`; then one more turn of the event loop, so that the
 * settled bodies' results are queued for the store. False if a body was still running.
 */
async function drainBodies(k: Kernel, ms: number): Promise<boolean> {
  const bodies: Array<Promise<unknown>> = [];
  for (const runner of k.active.values()) bodies.push(...runner.bodiesInFlight());
  let strays = 0;
  for (const byIndex of k.strayBodies.values())
    for (const stray of byIndex.values()) {
      bodies.push(stray.body);
      strays++;
    }
  // A body an ended attempt left (a sibling's retry, a pause) has no attempt to journal its
  // result: only the next attempt here would have taken it over. Waited for all the same (it
  // must not run in two processes at once), but its step runs again.
  if (strays > 0)
    k.log(
      'warn',
      `step bodies of ${strays} ended attempt(s) were in flight at stop: their steps run again`,
    );
  if (bodies.length > 0) {
    if (ms <= 0) return false;
    // Wall time, not the engine's clock: a test's fake clock may never move.
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    const settled = await Promise.race([Promise.allSettled(bodies).then(() => true), timedOut]);
    clearTimeout(timer);
    if (!settled) return false;
  }
  await new Promise((resolve) => setImmediate(resolve));
  return true;
}
