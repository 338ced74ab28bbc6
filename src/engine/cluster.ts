import { randomBytes } from 'node:crypto';
import { errorMessage } from '../core/errors.js';
import type { ClusterMessage, Store } from '../store/types.js';
import type { Clock } from './clock.js';

/** What the cluster membership needs from its engine. */
export interface ClusterHost {
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Messages from other processes (wake-ups, finished invocations, cancel and kill). */
  onMessage(message: ClusterMessage): void;
  /** This process took over invocations of dead processes. */
  onTakeover(invocationIds: string[]): void;
  /** This process lost its lease (it was presumed dead): stop everything it runs. */
  onFenced(): void;
  /** Periodic sweep: re-check waiters and orphans that a lost message would leave behind. */
  onSweep(): void;
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
 */
export class Cluster {
  private id = newProcessId();
  private unlisten: (() => Promise<void>) | undefined;
  private cancelTimers: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly host: ClusterHost,
    readonly leaseMs: number,
  ) {}

  get processId(): string {
    return this.id;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.join();
    this.every(this.leaseMs / 4, () => this.heartbeat());
    this.every(this.leaseMs / 2, () => this.reap());
    this.every(Math.min(1000, this.leaseMs / 2), async () => this.host.onSweep());
    // Processes that died while none was alive are taken over now, not a period later.
    await this.reap();
  }

  /** Leaves the cluster: the lease is given up so another process takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const cancel of this.cancelTimers) cancel();
    this.cancelTimers = [];
    await this.unlisten?.().catch(() => undefined);
    this.unlisten = undefined;
    await this.store
      .write([{ op: 'process.heartbeat', id: this.id, leaseUntil: 0 }])
      .catch(() => undefined);
  }

  /** Stops taking part without giving up the lease, as a crashed process would. */
  abandon(): void {
    this.stopped = true;
    for (const cancel of this.cancelTimers) cancel();
    this.cancelTimers = [];
    void this.unlisten?.().catch(() => undefined);
    this.unlisten = undefined;
  }

  private async join(): Promise<void> {
    await this.store.write([
      { op: 'process.register', id: this.id, leaseUntil: this.clock.now() + this.leaseMs },
    ]);
    this.unlisten = await this.store.listen(this.id, (m) => this.host.onMessage(m));
    this.host.log('info', `joined the cluster as ${this.id}`);
  }

  private async heartbeat(): Promise<void> {
    const [r] = await this.store.write([
      { op: 'process.heartbeat', id: this.id, leaseUntil: this.clock.now() + this.leaseMs },
    ]);
    if ((r as { alive: boolean }).alive || this.stopped) return;
    this.host.log(
      'error',
      `process ${this.id} lost its lease; its invocations belong to others now`,
    );
    this.host.onFenced();
    await this.unlisten?.().catch(() => undefined);
    this.id = newProcessId();
    await this.join();
  }

  private async reap(): Promise<void> {
    const [r] = await this.store.write([
      { op: 'process.reap', now: this.clock.now(), by: this.id },
    ]);
    const { reaped, invocations } = r as { reaped: string[]; invocations: string[] };
    if (reaped.length === 0) return;
    this.host.log(
      'warn',
      `took over ${invocations.length} invocation(s) of ${reaped.join(', ')} (lease expired)`,
    );
    this.host.onTakeover(invocations);
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

function newProcessId(): string {
  return `proc_${randomBytes(8).toString('hex')}`;
}
