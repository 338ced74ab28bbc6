import { randomBytes } from 'node:crypto';
import { errorMessage } from '../core/errors.js';
import type { ClusterMessage, Store } from '../store/types.js';
import type { Clock } from './clock.js';

/** What the cluster membership needs from its engine. */
export interface ClusterHost {
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Messages from other processes (wake-ups, finished invocations, cancel and kill). */
  onMessage(message: ClusterMessage): void;
  /**
   * This process took over invocations of dead processes. A rejection is logged; what it left
   * undone the sweep finds (the invocations are this process's in the store already).
   */
  onTakeover(invocationIds: string[]): Promise<void>;
  /** This process lost its lease (it was presumed dead): stop everything it runs, at once. */
  onFenced(): void;
  /** It joined again under a new id after losing its lease. */
  onRejoined(): void;
  /** Periodic sweep: re-check waiters and orphans that a lost message would leave behind. */
  onSweep(): Promise<void>;
}

/**
 * Membership of one engine process in a cluster sharing a store (PostgreSQL).
 *
 * Mechanism: every process registers with a lease it renews every `leaseMs / 4`; every
 * `leaseMs / 2` each process reaps the processes whose lease ended and takes over their
 * unfinished invocations (the store makes each dead process go to exactly one reaper). An
 * invocation is executed by its owner only; other processes reach it through messages that
 * the store sends on commit (LISTEN/NOTIFY). Why leases with ownership rather than claiming
 * every step with `FOR UPDATE SKIP LOCKED`: the process that accepts a request runs it without
 * a claim round trip, and the store is consulted for ownership only when a process dies.
 *
 * A process that finds its own lease gone (a long GC pause, a network partition) stops running
 * its invocations at once (they now belong to another process) and joins again under a new id.
 * It finds out from its heartbeat, or sooner from the store: every write is fenced to the
 * process's registration ({@link Store.fenceWrites}), so nothing it writes under its old id
 * commits once another process reaped it.
 *
 * No failure of the store ends the process: every periodic task catches, logs and runs again
 * at its next period, and a subscription or registration that failed is retried.
 *
 * Self-fencing. Fencing writes is not enough: handler code between journal writes (a step
 * body, an HTTP call) would still run in a process that was reaped while another process runs
 * the same invocation. So a process stops running its invocations BEFORE anyone can adopt them:
 * once it has not renewed its lease for `leaseMs - margin` by its own monotonic clock (counted
 * from when the last successful renewal was sent, so the lease it renewed cannot have ended
 * earlier), its lease is "in doubt": it abandons every runner and joins again under a new id
 * as soon as the store answers. A watchdog checks this every `leaseMs / 8` (heartbeats may
 * hang on a dead connection), and the engine checks it before each step body starts (a stalled
 * process runs its handlers' continuations before any timer). Reapers, for their part, wait
 * `margin` longer than the lease: the gap absorbs clock skew between processes and the time
 * between the check and the body's start. A step body already running when the lease falls in
 * doubt cannot be interrupted; its result is discarded.
 */
export class Cluster {
  private id = newProcessId();
  private unlisten: (() => Promise<void>) | undefined;
  private cancelTimers: Array<() => void> = [];
  private stopped = false;
  /** Stopping: no more reaps (see {@link quiesce}). */
  private leaving = false;
  /** The reap under way, and whether another was asked for meanwhile (see {@link reap}). */
  private reaping: Promise<void> | undefined;
  private reapAgain = false;
  private rejoining: Promise<void> | undefined;
  /** Monotonic time at which the last successful renewal of `id`'s lease was sent. */
  private renewedAt = 0;
  /** How long before its lease ends a process stops running invocations (see class doc). */
  readonly marginMs: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly host: ClusterHost,
    readonly leaseMs: number,
  ) {
    this.marginMs = leaseMs / 4;
  }

  get processId(): string {
    return this.id;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.leaving = false;
    // Nothing it owns can have been adopted before it first registers (`register` starts its
    // lease count).
    await this.join();
    this.every(this.leaseMs / 4, () => this.heartbeat());
    this.every(this.leaseMs / 8, async () => void this.checkLease());
    this.every(this.leaseMs / 2, () => this.reap());
    this.every(Math.min(1000, this.leaseMs / 2), () => this.host.onSweep());
    // Processes that died while none was alive are taken over now, not a period later.
    await this.reap();
  }

  /**
   * Stops reaping (a stopping process must not adopt what it would only leave again); its
   * heartbeats go on until {@link stop}.
   */
  quiesce(): void {
    this.leaving = true;
  }

  /**
   * Stops taking part. With `leave` (nothing of this process runs any more: no step body is in
   * flight), it unregisters at once and tells the others, which adopt its invocations now
   * rather than once its lease and the reapers' margin have passed (about 12.5 s with the
   * default lease). Without, the lease is kept and expires, as after a crash.
   */
  async stop(leave = false): Promise<void> {
    this.stopped = true;
    for (const cancel of this.cancelTimers) cancel();
    this.cancelTimers = [];
    await this.unlisten?.().catch(() => undefined);
    this.unlisten = undefined;
    if (!leave || this.registered !== this.id) return;
    const id = this.id;
    // Once: a second stop has nothing to leave.
    this.registered = undefined;
    this.host.log('info', `process ${id} leaves the cluster: its invocations are handed over`);
    await this.store
      .write([
        { op: 'process.leave', id },
        { op: 'notify', message: { type: 'left', process: id } },
      ])
      .catch((err: unknown) =>
        this.host.log(
          'warn',
          `process ${id} could not leave the cluster (${errorMessage(err)}): its invocations are taken over once its lease ends`,
        ),
      );
  }

  /** Stops taking part without giving up the lease, as a crashed process would. */
  abandon(): void {
    this.stopped = true;
    for (const cancel of this.cancelTimers) cancel();
    this.cancelTimers = [];
    void this.unlisten?.().catch(() => undefined);
    this.unlisten = undefined;
  }

  /**
   * Whether this process may still run its invocations: its lease was renewed recently enough
   * that nobody can have adopted them. When it may not, it fences itself (abandons every
   * runner, joins again under a new id) before answering. Synchronous, so a step body can be
   * refused right before it would start.
   */
  checkLease(): boolean {
    if (this.stopped) return true;
    if (this.monotonic() - this.renewedAt <= this.leaseMs - this.marginMs) return true;
    const idle = Math.round(this.monotonic() - this.renewedAt);
    this.rejoin(
      `process ${this.id} may have lost its lease: not renewed for ${idle} ms (lease ${this.leaseMs} ms). ` +
        'It stops running its invocations before others may adopt them, and joins again.',
    ).catch((err: unknown) =>
      this.host.log('warn', `joining again failed: ${errorMessage(err)}; retrying`),
    );
    return false;
  }

  private monotonic(): number {
    return this.clock.monotonic ? this.clock.monotonic() : this.clock.now();
  }

  /** The last id whose registration committed. */
  private registered: string | undefined;

  private async join(): Promise<void> {
    const id = this.id;
    await this.register(id);
    await this.subscribe();
    this.host.log('info', `joined the cluster as ${id}`);
  }

  /**
   * Makes `id` this process's id and queues its registration, synchronously: every write made
   * from here on (an invocation inserted with `id` as its owner, above all) is queued after the
   * registration and commits only while `id` is registered. Were there an await between the
   * two, a row owned by an id not yet registered could commit, and any reaper would adopt it
   * as an orphan while this process runs it too (torture seed long-pg-10: a flow's send made
   * twice, a counter add run in two processes).
   *
   * The lease counts from now: if the registration commits, it ends no earlier than now plus
   * the lease (the reapers' clock), so the invocations of `id` may start step bodies at once;
   * if it fails, no row of `id` can exist (every later write is refused) and the lease check
   * falls in doubt in its time.
   */
  private register(id: string): Promise<void> {
    this.id = id;
    this.renewedAt = this.monotonic();
    this.store.fenceWrites?.(id, (fenced) => {
      if (fenced !== this.id || this.stopped) return;
      this.rejoin(
        `process ${fenced} lost its lease; its invocations belong to others now. Joining again.`,
      ).catch((err: unknown) =>
        this.host.log('warn', `joining again failed: ${errorMessage(err)}; retrying`),
      );
    });
    return this.store
      .write([{ op: 'process.register', id, leaseUntil: this.clock.now() + this.leaseMs }])
      .then(() => {
        this.registered = id;
      });
  }

  /** Listens for this process's messages (again, after a failed attempt: see heartbeat). */
  private async subscribe(): Promise<void> {
    if (this.unlisten) return;
    const id = this.id;
    const unlisten = await this.store.listen(id, (m) => this.host.onMessage(m));
    if (this.stopped || id !== this.id) await unlisten().catch(() => undefined);
    else this.unlisten = unlisten;
  }

  private async heartbeat(): Promise<void> {
    // A rejoin under way registers the new id; a heartbeat of it now would find it unknown.
    if (this.rejoining) return;
    const id = this.id;
    const sentAt = this.monotonic();
    let alive: boolean;
    try {
      const [r] = await this.store.write([
        { op: 'process.heartbeat', id, leaseUntil: this.clock.now() + this.leaseMs },
      ]);
      alive = (r as { alive: boolean }).alive;
      // The lease now ends no earlier than `sentAt + leaseMs` (the same clock as the reapers').
      if (alive && id === this.id && !this.rejoining)
        this.renewedAt = Math.max(this.renewedAt, sentAt);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'process_fenced') throw err;
      alive = false;
    }
    if (this.stopped || id !== this.id) return;
    if (!alive)
      return this.rejoin(
        `process ${id} lost its lease; its invocations belong to others now. Joining again.`,
      );
    // A subscription lost with a failed join (the database was unreachable) is made again.
    await this.subscribe();
  }

  /**
   * This process was presumed dead and reaped: it stops everything it runs (the invocations
   * are another process's now) and registers again under a new id. One at a time; a failed
   * attempt leaves an unregistered id, which the next heartbeat finds and tries again.
   */
  private rejoin(why: string): Promise<void> {
    this.rejoining ??= (async () => {
      this.host.log('error', why);
      this.host.onFenced();
      const unlisten = this.unlisten;
      this.unlisten = undefined;
      // The new id, registered, at once, before any await: a sweep or takeover running
      // meanwhile must not start an invocation of the old id (launch checks the owner against
      // the current id), and nothing may be written under the new id before its registration
      // (see `register`). The old registration is left to expire, not given up: step bodies of
      // the old id that were running may still be running, and adoption waits for the whole
      // lease.
      const id = newProcessId();
      const registered = this.register(id);
      // Awaited below, after the old subscription ends: a registration refused meanwhile (the
      // store unreachable) must not be an unhandled rejection, which ends the process.
      registered.catch(() => undefined);
      await unlisten?.().catch(() => undefined);
      try {
        await registered;
        await this.subscribe();
        this.host.log('info', `joined the cluster as ${id}`);
      } finally {
        // Registered even if listening then failed (an outage; the heartbeat listens again):
        // the engine must run again, or its timers, stopped by the fence, stay stopped for good.
        if (this.registered === id && this.id === id) this.host.onRejoined();
      }
    })().finally(() => (this.rejoining = undefined));
    return this.rejoining;
  }

  /**
   * Reaps in rounds of at most {@link REAP_BATCH} invocations, until a round takes fewer: one
   * statement taking every invocation of a dead process held up this process's heartbeats
   * (which wait for every write in flight) for as long as it ran, 10 s for 200,000, and this
   * process then lost its own lease, joined again and reaped its old id, never settling.
   */
  private reap(): Promise<void> {
    if (this.reaping) {
      this.reapAgain = true;
      return this.reaping;
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.reapAgain = false;
          await this.reapRounds();
        } while (this.reapAgain && !this.stopped && !this.leaving);
      } finally {
        this.reaping = undefined;
      }
    };
    return (this.reaping = run());
  }

  /**
   * Another process left the cluster: reap now (one reap at a time: a reap under way reaps
   * once more after it).
   */
  reapNow(): Promise<void> {
    return this.reap();
  }

  private async reapRounds(): Promise<void> {
    if (this.leaving) return;
    for (;;) {
      const by = this.id;
      const [r] = await this.store.write([
        // Waits `marginMs` beyond the lease: the process fenced itself that long before it ended.
        { op: 'process.reap', now: this.clock.now() - this.marginMs, by, limit: REAP_BATCH },
      ]);
      const { reaped, invocations } = r as { reaped: string[]; invocations: string[] };
      if (invocations.length === 0 && reaped.length === 0) return;
      this.host.log(
        'warn',
        `took over ${invocations.length} invocation(s) of ${reaped.join(', ')} (lease expired or not registered)`,
      );
      await this.host.onTakeover(invocations);
      // Fewer than a round's worth: nothing was left. Stopped, or joined again under a new id
      // meanwhile: the next reap (under that id) takes the rest.
      if (invocations.length < REAP_BATCH || this.stopped || by !== this.id) return;
    }
  }

  /** Runs `fn` every `ms`, one run at a time; each task keeps one slot for its pending timer. */
  private every(ms: number, fn: () => Promise<void>): void {
    const slot = this.cancelTimers.length;
    const tick = (): void => {
      if (this.stopped) return;
      fn()
        .catch((err: unknown) =>
          this.host.log('warn', `cluster upkeep failed: ${errorMessage(err)}`),
        )
        .finally(() => {
          if (!this.stopped) this.cancelTimers[slot] = this.clock.setTimer(ms, tick);
        });
    };
    this.cancelTimers.push(this.clock.setTimer(ms, tick));
  }
}

/** The most invocations one `process.reap` takes over (about 0.25 s of PostgreSQL's time). */
const REAP_BATCH = 5000;

function newProcessId(): string {
  return `proc_${randomBytes(8).toString('hex')}`;
}
