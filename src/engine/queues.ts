import type { HandlerSpec } from '../core/definitions.js';
import { errorMessage, UsageError, ValidationError } from '../core/errors.js';
import type { Queue } from '../core/queue.js';
import type {
  InvocationRow,
  QueueAdmit,
  QueueAdmitResult,
  QueueStats,
  WriteOp,
} from '../store/types.js';
import type { Kernel } from './kernel.js';
import { NO_ENTRIES } from './kernel.js';

/** The op that files an invocation in its queue. */
export type QueuePut = Extract<WriteOp, { op: 'queue.put' }>;

/** Invocations admitted per `queue.admit`: one short transaction, then the next. */
const ADMIT_BATCH = 64;
/**
 * On a shared store, how often each process admits on its own: another process's finish frees
 * a slot this process hears nothing about, and admits only when its own work finishes.
 */
const POLL_MS = 1000;
const MAX_PRIORITY = 1_000_000;

/** Pumping state of one queue: at most one admission in flight, and whether to go again. */
interface Pump {
  running: boolean;
  again: boolean;
  /** The rate-limit wake-up armed, if any. */
  timer?: { at: number; cancel: () => void };
}

/** What the admin API shows of a queue. */
export interface QueueInfo extends QueueStats {
  name: string;
  limits: {
    concurrency?: number;
    rateLimit?: { limit: number; periodMs: number };
    perKey?: { concurrency?: number; rateLimit?: { limit: number; periodMs: number } };
  };
}

/**
 * The engine side of flow-control queues (see core/queue.ts): files new invocations of queued
 * handlers in the store (`queue.put`, in their insert's write), and admits them (`queue.admit`)
 * whenever a slot may have freed — after an insert, after an invocation of the queue finished,
 * when a rate window opens, at start, and (shared stores) every second.
 */
export class Queues {
  private readonly byName = new Map<string, Queue>();
  private readonly pumps = new Map<string, Pump>();
  /**
   * Embedded: the queues where invocations may wait (filed, not admitted at insert), so a
   * finish pokes only those; the last admission says whether any is left. A shared store's
   * other processes file too, so there every finish pokes.
   */
  private readonly mayWait = new Set<string>();
  private stopPoll?: () => void;

  constructor(private readonly k: Kernel) {
    for (const def of k.registry.all()) {
      for (const name of Object.keys(def.handlers)) {
        const spec = k.registry.spec(def.name, name);
        const q = spec?.options.queue;
        if (!q) continue;
        if (def.kind === 'object' && !spec.shared)
          throw new UsageError(
            `${def.name}.${name} is an exclusive object handler: it cannot wait in queue "${q.name}". ` +
              'Exclusive handlers already run one at a time per object key; put the queue on a service or workflow handler (its queueKey gives the per-key limit).',
          );
        const known = this.byName.get(q.name);
        if (known && known !== q)
          throw new UsageError(
            `two queues are named "${q.name}": declare it once with queue({...}) and give the same object to every handler`,
          );
        this.byName.set(q.name, q);
      }
    }
  }

  /** Whether any handler waits in a queue (the timer path reads rows only then). */
  get any(): boolean {
    return this.byName.size > 0;
  }

  /** Every queue, by name. */
  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** The `queue.put` of a new invocation of `spec` (a queued handler), with its key and priority. */
  putOp(row: InvocationRow, spec: HandlerSpec): QueuePut {
    const q = spec.options.queue!;
    const where = `${row.service}.${row.handler}`;
    let key = '';
    let priority = 0;
    try {
      if (spec.options.queueKey) key = spec.options.queueKey(row.input);
      if (spec.options.priority) priority = spec.options.priority(row.input);
    } catch (err) {
      throw new ValidationError(
        `the queueKey or priority function of ${where} threw on this input: ${errorMessage(err)}`,
      );
    }
    if (typeof key !== 'string')
      throw new ValidationError(`the queueKey of ${where} must return a string, got ${typeof key}`);
    if (!Number.isInteger(priority) || Math.abs(priority) > MAX_PRIORITY)
      throw new ValidationError(
        `the priority of ${where} must be a whole number from -${MAX_PRIORITY} to ${MAX_PRIORITY}, got ${String(priority)}`,
      );
    return { op: 'queue.put', invocationId: row.id, queue: q.name, key, priority };
  }

  /**
   * The `queue.put` that files `row` again (an invocation that never started: resumed after a
   * pause, or started now by an operator), or undefined when its handler has no queue.
   */
  refile(row: InvocationRow): QueuePut | undefined {
    const spec = this.k.registry.spec(row.service, row.handler);
    if (!spec?.options.queue) return undefined;
    try {
      return this.putOp(row, spec);
    } catch {
      return {
        op: 'queue.put',
        invocationId: row.id,
        queue: spec.options.queue.name,
        key: '',
        priority: 0,
      };
    }
  }

  /**
   * A start timer fired: if its invocation is a delayed one of a queued handler, file it in its
   * queue (status `queued`, in the write that deletes the timer) instead of starting it.
   * Answers false when it is not one (the caller starts it as usual).
   */
  async fileAfterTimer(id: string, expectRunAt?: number): Promise<boolean> {
    const { k } = this;
    const row = await k.store.getInvocation(id);
    const spec = row && k.registry.spec(row.service, row.handler);
    if (!row || !spec?.options.queue) return false;
    // Not waiting for its start (cancelled, started, a retry's timer): the usual path decides.
    if (row.status !== 'scheduled') return false;
    // Whoever owns the row: a queued invocation is nobody's until admitted, and the write below
    // files it only while it is still scheduled (a second firing files nothing). Answering
    // "not mine" here would let the caller start it outside its queue (torture seed f9caad8a:
    // the process rejoined under a new id while it read the row).
    let put: QueuePut;
    try {
      put = this.putOp(row, spec);
    } catch {
      // Checked when it was sent; a key function that throws now files it under no key.
      put = {
        op: 'queue.put',
        invocationId: id,
        queue: spec.options.queue.name,
        key: '',
        priority: 0,
      };
    }
    await k.store.write([
      // A debounced start: only while no send moved it later since it was found due.
      ...(expectRunAt === undefined
        ? []
        : [
            {
              op: 'invocation.expect',
              id,
              status: ['scheduled'],
              runAt: expectRunAt,
            } satisfies WriteOp,
          ]),
      { op: 'timer.delete', invocationId: id, index: -1 },
      {
        op: 'invocation.update',
        id,
        set: { status: 'queued', modifiedAt: k.clock.now() },
        ifStatus: 'scheduled',
      },
      put,
    ]);
    k.timers.done(id, -1);
    this.poke(spec.options.queue.name);
    return true;
  }

  /** The limits of `q` as `queue.put`'s fast path and `queue.admit` take them, now. */
  limitsNow(q: Queue): Omit<QueueAdmit, 'queue' | 'max'> {
    const { k } = this;
    const l: Omit<QueueAdmit, 'queue' | 'max'> = { now: k.clock.now() };
    const owner = k.own.processId;
    if (owner !== undefined) l.owner = owner;
    if (q.concurrency !== undefined) l.concurrency = q.concurrency;
    if (q.keyConcurrency !== undefined) l.keyConcurrency = q.keyConcurrency;
    if (q.rate) l.rate = q.rate;
    if (q.keyRate) l.keyRate = q.keyRate;
    return l;
  }

  /** Admits from every queue once, and polls on a shared store. */
  start(): void {
    for (const name of this.byName.keys()) this.poke(name);
    if (this.k.store.shared && this.byName.size > 0) {
      const tick = (): void => {
        if (this.k.stopping) return;
        for (const name of this.byName.keys()) this.poke(name);
        this.stopPoll = this.k.clock.setTimer(POLL_MS, tick);
      };
      this.stopPoll = this.k.clock.setTimer(POLL_MS, tick);
    }
  }

  stop(): void {
    this.stopPoll?.();
    for (const p of this.pumps.values()) p.timer?.cancel();
  }

  /** An invocation finished: if it held a slot of a queue, admit the next. */
  finished(row: InvocationRow): void {
    if (this.byName.size === 0) return;
    const q = this.k.registry.spec(row.service, row.handler)?.options.queue;
    if (q && (this.k.store.shared || this.mayWait.has(q.name))) this.poke(q.name);
  }

  /** A slot or a rate window may have opened in queue `name`: admit what fits (coalesced). */
  poke(name: string): void {
    const q = this.byName.get(name);
    if (!q || this.k.stopping) return;
    this.mayWait.add(name);
    let p = this.pumps.get(name);
    if (!p) this.pumps.set(name, (p = { running: false, again: false }));
    if (p.running) {
      p.again = true;
      return;
    }
    p.running = true;
    this.pump(q, p).then(
      () => {
        p.running = false;
        // Poked after the pump's last look at `again`, before it returned.
        if (p.again) this.poke(name);
      },
      (err: unknown) => {
        p.running = false;
        if (this.k.stopping) return;
        this.k.log(
          'warn',
          `could not admit from queue "${name}": ${errorMessage(err)}; trying again`,
        );
        this.k.retryLater(`admitting from queue "${name}"`, async () => this.poke(name));
      },
    );
  }

  /** The admin API's view of the queues. */
  async info(): Promise<QueueInfo[]> {
    const out: QueueInfo[] = [];
    for (const q of this.byName.values()) {
      const stats = await this.k.store.queueStats(q.name);
      const limits: QueueInfo['limits'] = {};
      if (q.concurrency !== undefined) limits.concurrency = q.concurrency;
      if (q.rate) limits.rateLimit = q.rate;
      if (q.keyConcurrency !== undefined || q.keyRate) {
        limits.perKey = {};
        if (q.keyConcurrency !== undefined) limits.perKey.concurrency = q.keyConcurrency;
        if (q.keyRate) limits.perKey.rateLimit = q.keyRate;
      }
      out.push({ name: q.name, limits, ...stats });
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  private async pump(q: Queue, p: Pump): Promise<void> {
    const { k } = this;
    do {
      p.again = false;
      const admit: WriteOp = {
        op: 'queue.admit',
        queue: q.name,
        max: ADMIT_BATCH,
        ...this.limitsNow(q),
      };
      const [r] = await k.store.write([admit]);
      const res = r as QueueAdmitResult;
      for (const row of res.admitted) {
        if (k.stopping) break;
        // Admitted durably as running: if this process stops before it runs, recovery (or
        // the process that adopts it) resumes it like any running invocation.
        k.admission.launch(row, NO_ENTRIES);
      }
      if (res.retryAt !== undefined) this.wakeAt(q.name, p, res.retryAt);
      // Filed after this admission read: its insert poked, so `again` is set.
      if (!res.waiting && !p.again) this.mayWait.delete(q.name);
      if (res.admitted.length === ADMIT_BATCH) p.again = true;
    } while (p.again && !k.stopping);
  }

  /** Admits again when a rate window opens (the earliest wake-up wins). */
  private wakeAt(name: string, p: Pump, at: number): void {
    if (p.timer && p.timer.at <= at) return;
    p.timer?.cancel();
    const cancel = this.k.clock.setTimer(Math.max(0, at - this.k.clock.now()), () => {
      p.timer = undefined;
      this.poke(name);
    });
    p.timer = { at, cancel };
  }
}
