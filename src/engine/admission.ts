import type { SpanKind } from '@opentelemetry/api';
import { handlerSpec, type Definition, type HandlerSpec } from '../core/definitions.js';
import {
  ConflictError,
  errorMessage,
  NotFoundError,
  toErrorInfo,
  ValidationError,
} from '../core/errors.js';
import { pinnedVersion, versionMarker, type JournalEntry, type Target } from '../core/journal.js';
import { resolveRetry, type ResolvedRetryPolicy } from '../core/retry.js';
import { normalize } from '../core/replay.js';
import { validate } from '../core/schema.js';
import { StoreError } from '../store/errors.js';
import type { InvocationRow, TimerRow, WriteOp } from '../store/types.js';
import { adminHandlerSpec } from './admin-state.js';
import type { Debounce, Throttle } from '../core/flow.js';
import { dedupeKey } from './dedupe.js';
import { newInvocationId } from './ids.js';
import { NO_ENTRIES, unreplayable, type Kernel, type Loading } from './kernel.js';
import { Runner } from './runner.js';
import { noteRootKind } from '../observability/tracing/attempt.js';

/** A target the registry resolved: the definition, its handler, and the object/workflow key. */
export interface ResolvedTarget {
  def: Definition;
  spec: HandlerSpec;
  /** Empty for a service. */
  key: string;
}

/** A request to run a resolved target. */
export interface Admit extends ResolvedTarget {
  input?: unknown;
  idempotencyKey?: string;
  /** Start after this many milliseconds (sends only). */
  delayMs?: number;
  /** The stored trace context (`InvocationRow.trace`, see observability/tracing). */
  trace?: string;
  /**
   * Without `trace`: the span kind of the invocation's first attempt (server from the
   * ingress's invoke, consumer from a send or a broker message).
   */
  spanKind?: SpanKind;
  /**
   * A restart from a journal prefix (restart.ts): the entries the new invocation starts with,
   * done ones and unfinished sleeps only. They are written in the insert's own write (never an
   * invocation with half a prefix), with a timer for each unfinished sleep, and its first
   * attempt replays them. It must start at once: an invocation queued behind its object key
   * is started later without its journal being read (`Ownership.enqueue`), so a busy key
   * refuses it (409 `key_busy`) instead of queueing it.
   */
  prefix?: ReadonlyMap<number, JournalEntry>;
  /** Sends only: debounce (flow-control.ts handles it before `create`). */
  debounce?: Debounce;
  /** Sends only: throttle (flow-control.ts handles it before `create`). */
  throttle?: Throttle;
  /**
   * The dedupe key to store instead of the one {@link dedupeKey} derives: a debounced burst's
   * generation (flow-control.ts), so concurrent first sends of a burst create one invocation.
   */
  dedupe?: string;
  /** The index of a delayed start's timer: -1, or `DEBOUNCE_TIMER` (timer-firing.ts) for a debounced one. */
  startTimer?: number;
}

/** What {@link Admission.create} answers. */
export interface Admitted {
  row: InvocationRow;
  /** True when an idempotency key or workflow key matched an existing invocation. */
  existing: boolean;
  /** Settles once the insert is durable (rejects when it failed). */
  durable: Promise<unknown>;
}

function keyBusy(row: InvocationRow): ConflictError {
  return new ConflictError(
    `object ${row.service}/${row.key} is busy (another invocation holds its key): a restart from a journal prefix of an exclusive handler starts at once or not at all; try again once the key is free`,
    'key_busy',
  );
}

/**
 * Admission: creating invocations (deduplicated by idempotency or workflow key), starting them,
 * and replaying them from their journals (after a restart, a suspension, a retry).
 */
export class Admission {
  /**
   * Deduplication keys whose insert is not durable yet, with the invocation that will hold
   * each (on a shared store, the winner is known only once the insert answers).
   */
  private readonly inflightDedupe = new Map<string, Promise<InvocationRow>>();
  /** Resolved retry policies by handler: definitions do not change while the engine runs. */
  private readonly policies = new WeakMap<HandlerSpec, ResolvedRetryPolicy>();

  constructor(private readonly k: Kernel) {}

  /** Resolves a target by name (404 for an unknown one, 400 for a missing key). */
  resolve(service: string, handler: string, key: string | undefined): ResolvedTarget {
    const k = key ?? '';
    return { ...this.k.registry.resolve(service, handler, k), key: k };
  }

  /**
   * {@link create} for a target a handler's call or send names: an unknown one rejects (its
   * caller journals that as the call's failure).
   */
  async createNamed(
    target: Target,
    req: Omit<Admit, keyof ResolvedTarget>,
    caller: { id: string; index: number } | undefined,
    extra: (row: InvocationRow) => WriteOp[],
    normalized: boolean,
  ): Promise<Admitted> {
    // Not awaited before create starts: create runs synchronously up to its first await, so
    // the call's write is issued before anything the handler does next.
    return this.create(
      { ...this.resolve(target.service, target.handler, target.key), ...req },
      caller,
      extra,
      normalized,
    );
  }

  /**
   * Validates and creates an invocation (or finds the one its idempotency key or workflow key
   * names), and starts it. Execution starts before the insert is durable: every write of the
   * invocation is ordered after the insert, so nothing it does can outlive a lost insert, and
   * its step bodies (which act outside the journal) wait for the insert.
   */
  async create(
    req: Admit,
    caller: { id: string; index: number } | undefined,
    /** Ops that ride in the insert's write (the caller's journal entry of a call or send). */
    extra?: (row: InvocationRow) => WriteOp[],
    /**
     * The input is already in its JSON form (a handler's call or send normalized it), or
     * `'validated'`: {@link checkInput} checked it already (flow control does, before it counts).
     */
    normalized: boolean | 'validated' = false,
  ): Promise<Admitted> {
    const { k } = this;
    k.checkRunning();
    const { def, spec, key } = req;
    const input =
      normalized === 'validated' ? req.input : await this.checkInput(req, req.input, normalized);
    // A workflow's run is keyed by its workflow key alone (see dedupe.ts).
    const dedupe = req.dedupe ?? dedupeKey(def.kind, def.name, spec.name, key, req.idempotencyKey);
    // Checked again right after each await, before anything else can run: a concurrent
    // request for the same key that got there first is found, not duplicated.
    while (dedupe) {
      let inflight = this.inflightDedupe.get(dedupe);
      let found = inflight || k.own.dedupeByInsert ? undefined : await k.store.findByDedupe(dedupe);
      if (!found) inflight ??= this.inflightDedupe.get(dedupe);
      if (inflight) {
        // A duplicate is answered with the original's id only once the original's insert is
        // durable: a crash right after the answer must not lose the invocation it names.
        found = await inflight.catch(() => undefined);
        // Not stored: the key is free again, so look again (and insert, if still free).
        if (!found) continue;
      }
      if (found) return { row: found, existing: true, durable: Promise.resolve() };
      break;
    }
    const now = k.clock.now();
    const delay = req.delayMs ?? 0;
    const row: InvocationRow = {
      id: newInvocationId(now),
      service: def.name,
      handler: spec.name,
      key,
      // One exclusive handler per object key at a time. A workflow's run needs no lock: its
      // run-once key already makes it the only run, and its other handlers are shared; a lock
      // would cost every waiting workflow memory (embedded) or round trips (shared store).
      exclusive: def.kind === 'object' && !spec.shared,
      // Decided now whether it starts at once, so the insert already says 'running'.
      status: delay > 0 ? 'scheduled' : 'pending',
      input,
      dedupe,
      callerId: caller?.id,
      callerEntry: caller?.index,
      attempt: 0,
      retryIndex: -1,
      runAt: delay > 0 ? now + delay : undefined,
      createdAt: now,
      modifiedAt: now,
    };
    if (req.trace !== undefined) row.trace = req.trace;
    else if (req.spanKind !== undefined) noteRootKind(row, req.spanKind);
    const startTimer = req.startTimer ?? -1;
    // A queued handler's invocation waits in its queue (unless delayed: its start timer files
    // it; or restarted from a prefix by an operator: that starts at once).
    const queued = spec.options.queue !== undefined && delay === 0 && !req.prefix;
    // Computed for a delayed one too: a queueKey that throws is the sender's 400, not the timer's.
    const queuePut = spec.options.queue ? k.queues.putOp(row, spec) : undefined;
    if (queued) row.status = 'queued';
    const { insert, byStore } = queued ? this.queuedInsert(row) : k.own.admit(row, delay > 0);
    const ops: WriteOp[] = [insert];
    // Admitted by the insert itself when nothing waits and the limits allow (the fast path).
    if (queued) ops.push({ ...queuePut!, admit: k.queues.limitsNow(spec.options.queue!) });
    const sleeps = req.prefix ? this.withPrefix(row, insert, byStore, req.prefix, ops) : [];
    if (delay > 0)
      ops.push({
        op: 'timer.put',
        timer: { invocationId: row.id, index: startTimer, fireAt: now + delay },
      });
    // The caller's journal entry rides in the same write, so a call or send is recorded
    // atomically with the invocation it starts.
    if (extra) ops.push(...extra(row));
    const written = k.store.write(ops);
    if (dedupe) {
      // The invocation holding the key once the insert is durable: this one, unless another
      // process inserted first. Rejects when the insert failed (nobody holds the key then).
      const winner = written.then((r) => (r[0] as { existing?: InvocationRow }).existing ?? row);
      winner.catch(() => undefined);
      this.inflightDedupe.set(dedupe, winner);
    }
    const durable: Promise<unknown> = written.then(
      (results) => {
        if (dedupe) this.inflightDedupe.delete(dedupe);
        if (delay > 0)
          k.timers.add({ invocationId: row.id, index: startTimer, fireAt: now + delay });
        if (queued && !(results[1] as { admitted?: boolean } | undefined)?.admitted)
          k.queues.poke(spec.options.queue!.name);
        const first = results[0] as { inserted?: boolean; acquired?: boolean } | undefined;
        // Counted once durable, and not when another process's insert held the key already
        // (nor for a restart from a prefix that found its key busy: it is deleted again).
        const dropped = req.prefix !== undefined && first?.acquired === false;
        if (k.metrics && first?.inserted !== false && !dropped)
          k.metrics.started(row.service, row.handler);
      },
      (err: unknown) => {
        if (dedupe) this.inflightDedupe.delete(dedupe);
        this.insertFailed(row, ops, err);
        throw err;
      },
    );
    // Callers that do not wait for durability (invoke waits for the result instead) must not
    // leave its failure unhandled; those that await it still see the rejection.
    durable.catch(() => undefined);
    if (queued) {
      // Whether it starts now is the store's answer (the queue's limits, across processes).
      const results = await written;
      const inserted = results[0] as { inserted: boolean; existing?: InvocationRow };
      if (!inserted.inserted) return { row: inserted.existing!, existing: true, durable };
      if ((results[1] as { admitted: boolean }).admitted) {
        row.status = 'running';
        this.launch(row, NO_ENTRIES, def, spec);
      }
      return { row, existing: false, durable };
    }
    if (byStore || (dedupe && k.own.dedupeByInsert)) {
      // Another process may hold the dedupe key or the object key: wait for the store's answer.
      const results = await written;
      const inserted = results[0] as {
        inserted: boolean;
        acquired?: boolean;
        existing?: InvocationRow;
      };
      if (!inserted.inserted) return { row: inserted.existing!, existing: true, durable };
      if (delay > 0) return { row, existing: false, durable };
      if (byStore) {
        if (!inserted.acquired) {
          if (req.prefix) return this.dropPrefixed(row);
          return { row, existing: false, durable };
        }
        row.status = 'running';
      }
    }
    // Its step bodies wait for the insert when a retry of its creation would be the same
    // request: a dedupe key (Idempotency-Key, workflow key, bus message), a caller's journaled
    // call, or an operator's restart from a prefix. Without any, a caller's retry is a new
    // request by definition, so nothing waits.
    const hold = dedupe !== undefined || caller !== undefined || req.prefix ? written : undefined;
    if (row.status === 'running') this.launch(row, req.prefix ?? NO_ENTRIES, def, spec, hold);
    // The copied sleeps' timers, held once durable (a refused restart never gets here).
    if (sleeps.length > 0)
      void written.then(
        () => sleeps.forEach((t) => k.timers.add(t)),
        () => undefined,
      );
    return { row, existing: false, durable };
  }

  /**
   * The input of `target` as it is stored: validated against the handler's schema (which may
   * transform it: defaults, coercions) and in its JSON form. 400 (`ValidationError`) otherwise.
   */
  async checkInput(target: ResolvedTarget, input: unknown, normalized: boolean): Promise<unknown> {
    const { def, spec } = target;
    // A schema may transform the input (defaults, coercions): its output is normalized again.
    if (spec.options.input || !normalized) {
      if (spec.options.input)
        input = await validate(spec.options.input, input, `input of ${def.name}.${spec.name}`);
      try {
        input = normalize(input, `the input of ${def.name}.${spec.name}`);
      } catch (err) {
        throw new ValidationError((err as Error).message);
      }
    }
    return input;
  }

  /** The insert of a `queued` invocation: it takes no key and starts nothing (admission does). */
  private queuedInsert(row: InvocationRow): { insert: WriteOp; byStore: boolean } {
    const owner = this.k.own.processId;
    if (owner !== undefined) row.owner = owner;
    return { insert: { op: 'invocation.insert', row: { ...row } }, byStore: false };
  }

  /**
   * Adds a restart's journal prefix to the insert's write `ops` (see `Admit.prefix`) and answers
   * the timers of its unfinished sleeps. Embedded, the object key was taken (or not) in memory
   * already: a busy key refuses the restart before anything is written. On a shared store the
   * insert takes the key: the row is inserted `paused` (the store stores it `running` when it
   * gets the key), so that when the key is busy it is not queued, and is deleted again.
   */
  private withPrefix(
    row: InvocationRow,
    insert: WriteOp,
    byStore: boolean,
    prefix: ReadonlyMap<number, JournalEntry>,
    ops: WriteOp[],
  ): TimerRow[] {
    if (!byStore && row.status !== 'running') {
      this.k.own.dequeue(row);
      throw keyBusy(row);
    }
    if (byStore && insert.op === 'invocation.insert') insert.row.status = 'paused';
    const sleeps: TimerRow[] = [];
    for (const [index, entry] of prefix) {
      ops.push({ op: 'journal.put', invocationId: row.id, index, entry });
      if (entry.kind === 'sleep' && !entry.done && entry.wakeAt !== undefined)
        sleeps.push({ invocationId: row.id, index, fireAt: entry.wakeAt });
    }
    for (const timer of sleeps) ops.push({ op: 'timer.put', timer });
    return sleeps;
  }

  /** A restart from a prefix found its object key busy on a shared store: undo its insert. */
  private async dropPrefixed(row: InvocationRow): Promise<never> {
    const { k } = this;
    try {
      // Nothing started it: it was stored paused, which no key hand-off starts.
      await k.store.write([
        { op: 'invocation.expect', id: row.id, status: ['paused'] },
        { op: 'invocation.delete', id: row.id },
      ]);
    } catch (err) {
      k.log(
        'warn',
        `could not delete ${row.id}, a restart refused for a busy key: ${errorMessage(err)}; it stays paused (kill or purge it)`,
      );
    }
    throw keyBusy(row);
  }

  /** The insert of a new invocation failed: undo what started it. */
  private insertFailed(row: InvocationRow, ops: WriteOp[], err: unknown): void {
    const { k } = this;
    k.log('error', `could not store invocation ${row.id}: ${errorMessage(err)}`);
    k.results.settle(row.id, { error: toErrorInfo(err) });
    // An embedded store starts the invocation before its insert is durable: stop that
    // attempt, which has no row.
    const ghost = k.active.get(row.id);
    if (ghost) {
      k.outcomes.abandon(ghost);
      k.settling.delete(row.id);
    }
    k.own.insertFailed(row);
    // The caller's journal entry of this call or send was lost with it: the caller's attempt
    // must not go on as if it had been recorded (the send would never happen).
    for (const op of ops) {
      const runner = op.op === 'journal.put' ? k.active.get(op.invocationId) : undefined;
      if (runner) k.host.failAttempt(runner, err);
    }
  }

  /** Starts an attempt of `row` in this process, replaying `recorded`. */
  launch(
    row: InvocationRow,
    recorded: ReadonlyMap<number, JournalEntry>,
    /** The handler, when the caller resolved it already (a new invocation). */
    resolvedDef?: Definition,
    resolvedSpec?: HandlerSpec,
    /** The insert of a new invocation, when it runs before the insert is durable. */
    insertWritten?: Promise<unknown>,
  ): void {
    const { k } = this;
    // Stopping: nothing starts, not even handler code up to its first step (a key handed on by
    // a finish that landed during the stop's grace): the next start, or the process adopting
    // this one's invocations, runs it (torture seed f794b74e: a Counter.add entered in a process
    // that had left the cluster, and in its adopter).
    if (k.stopping) return;
    // One attempt per invocation at a time, whichever path (hand-off, sweep, resume) got here.
    if (k.active.has(row.id)) return;
    // Paused by an operator (or being paused): it runs again only through a resume.
    if (row.status === 'paused' || k.pausing.has(row.id)) return;
    // Shared store: only its owner runs an invocation. A row read or handed over before this
    // process lost its lease names the old id: it is another process's now.
    if (!k.own.runsHere(row)) return;
    const pinned = pinnedVersion(recorded.get(0));
    const chosen = k.registry.versionFor(row.service, pinned, recorded.size > 0);
    const def = chosen.versioned ? chosen.def : (resolvedDef ?? chosen.def);
    const spec =
      (def === resolvedDef ? resolvedSpec : undefined) ?? (def && this.specOf(def, row.handler));
    if (!def || !spec) {
      const what =
        pinned !== undefined
          ? `version ${pinned} of ${row.service} (which this invocation started with) is no longer registered: register it again beside the new one until its invocations finish`
          : `${row.service}.${row.handler} is no longer registered`;
      void k.outcomes.finishRow(row, { error: toErrorInfo(new NotFoundError(what)) });
      return;
    }
    // Pins a new invocation of a versioned definition to the version it starts with: every
    // later attempt (another process, newer code) reads the marker and runs the same version.
    const marker =
      chosen.versioned && recorded.size === 0 ? versionMarker(def.options.version!) : undefined;
    if (marker) recorded = new Map([[0, marker]]);
    const policy = this.retryPolicyOf(def, spec);
    if (k.cancelRequests.delete(row.id)) row.cancel ??= 'requested';
    const runner = new Runner(k, row, spec, recorded, policy, def.kind === 'workflow');
    k.active.set(row.id, runner);
    if (marker)
      void k.host
        .write(runner, [{ op: 'journal.put', invocationId: row.id, index: 0, entry: marker }])
        .catch(() => undefined);
    if (row.status !== 'running') {
      row.status = 'running';
      // Marks the invocation runnable for recovery; rides along with its first commit.
      void k.host
        .write(runner, [
          {
            op: 'invocation.update',
            id: row.id,
            set: { status: 'running', modifiedAt: k.clock.now() },
          },
        ])
        .catch(() => undefined);
    }
    // The handler runs now, but no step body until the insert is durable (see holdStepsUntil).
    if (insertWritten) runner.holdStepsUntil(insertWritten);
    void runner.start();
  }

  private retryPolicyOf(def: Definition, spec: HandlerSpec): ResolvedRetryPolicy {
    let policy = this.policies.get(spec);
    if (!policy) {
      policy = resolveRetry(
        spec.options.retry,
        resolveRetry(def.options.retry, this.k.defaultRetry),
      );
      this.policies.set(spec, policy);
    }
    return policy;
  }

  private specOf(def: Definition, handler: string): HandlerSpec | undefined {
    // An older side-by-side version: its own handlers, not the name's current ones.
    if (this.k.registry.get(def.name) !== def) return handlerSpec(def, handler);
    try {
      return this.k.registry.resolve(def.name, handler, def.kind === 'service' ? '' : 'k').spec;
    } catch {
      // The admin API's state edits run as invocations of Keel's own handlers (admin-state.ts).
      return adminHandlerSpec(def, handler);
    }
  }

  /** Replays an invocation from its journal (after a restart, a suspension or a retry). */
  resume(row: InvocationRow): void {
    const { k } = this;
    if (k.active.has(row.id) || k.stopping) return;
    // One load at a time: a second one could read before a first replay's finish commits and
    // launch it again after. The load in flight looks again when it is done.
    const inFlight = k.loading.get(row.id);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    // Reserve the slot so completions arriving while the journal loads are not lost.
    const pending: Array<[number, JournalEntry]> = [];
    const placeholder: Loading = { loading: true, pending, again: false, finished: false };
    k.loading.set(row.id, placeholder);
    // The row this resume was asked for may be stale (a sweep's read answered after the
    // invocation finished and handed its key on): its current status comes with the journal.
    void Promise.all([k.store.getInvocation(row.id), k.store.getJournal(row.id)]).then(
      ([current, entries]) => {
        k.loading.delete(row.id);
        if (k.stopping || k.active.has(row.id)) return;
        if (k.settling.has(row.id)) {
          // Its last attempt's status write is in flight: what it leaves decides what is next.
          k.retryLater(`resuming ${row.id}`, () => this.resumeById(row.id));
          return;
        }
        // Suspended in the store, no completion here: nothing for a replay to do but wait and
        // suspend again, and that suspension would be refused (the row is not running), which
        // resumes it again, every `suspendAfter`, for as long as it waits. A completion sets the
        // row running as it commits, and then resumes it itself (delivered to this load, or
        // `again` asked for by a wake-up). A cluster sweep whose read of the row predates its
        // suspension gets here: creating 50,000 waiting workflows left 1,500 in that loop.
        const waits = current?.status === 'suspended' && pending.length === 0;
        if (placeholder.finished || waits || !this.resumable(current)) {
          if (placeholder.again && !placeholder.finished)
            this.resumeById(row.id).catch(() =>
              k.retryLater(`resuming ${row.id}`, () => this.resumeById(row.id)),
            );
          return;
        }
        const recorded = new Map(entries);
        for (const [i, e] of pending) recorded.set(i, e);
        try {
          this.launch({ ...row, status: 'running' }, recorded);
          if (!k.active.has(row.id)) return;
          this.reattach(row.id, recorded);
          this.rearmSleeps(row.id, recorded);
        } catch (err) {
          // A journal this engine cannot replay must not take the process down (and recovery
          // with it, again at every start): isolate the one invocation.
          const runner = k.active.get(row.id);
          if (runner) k.outcomes.abandon(runner);
          k.outcomes.pauseRow(row, unreplayable(row.id, err));
        }
      },
      (err: unknown) => {
        k.loading.delete(row.id);
        if (!(err instanceof StoreError)) {
          // Not the store failing but the journal's content (it cannot be decoded): retrying
          // would fail the same way forever.
          k.outcomes.pauseRow(row, unreplayable(row.id, err));
          return;
        }
        k.log('warn', `could not load the journal of ${row.id}: ${errorMessage(err)}`);
        k.retryLater(`resuming ${row.id}`, () => this.resumeById(row.id));
      },
    );
  }

  /**
   * Calls that attached to an invocation started by someone else (idempotency key, workflow
   * key) are not completed by that invocation: wait for their results again after a replay.
   */
  private reattach(id: string, recorded: ReadonlyMap<number, JournalEntry>): void {
    const { k } = this;
    for (const [index, entry] of recorded) {
      if (entry.kind !== 'call' || entry.done || !entry.calleeId) continue;
      k.background(
        `reattaching entry ${index} of ${id}`,
        k.store.getInvocation(entry.calleeId).then((callee) => {
          const runner = k.active.get(id);
          if (runner && callee?.callerId !== id) k.host.attachCall(runner, index, entry);
        }),
      );
    }
  }

  /**
   * Sleeps the journal holds unfinished have a durable timer (written with the entry), which
   * this process may not hold in memory: a write whose answer was lost (a dropped connection)
   * may have committed both. Held again here, or the replay would wait for the next reload.
   */
  private rearmSleeps(id: string, recorded: ReadonlyMap<number, JournalEntry>): void {
    for (const [index, entry] of recorded) {
      if (entry.kind === 'sleep' && !entry.done && entry.wakeAt !== undefined)
        this.k.timers.add({ invocationId: id, index, fireAt: entry.wakeAt });
    }
  }

  /**
   * Whether a row read for a resume may run here: not finished, not paused or waiting to
   * start (other paths run those), and, on a shared store, still this process's.
   */
  private resumable(row: InvocationRow | undefined): boolean {
    if (!row || !this.k.own.runsHere(row)) return false;
    return row.status === 'running' || row.status === 'suspended' || row.status === 'backing-off';
  }

  /** Reads an invocation and replays it if it is runnable and this process's. */
  async resumeById(id: string): Promise<void> {
    const { k } = this;
    if (k.active.has(id)) return;
    const inFlight = k.loading.get(id);
    if (inFlight) {
      // The load in flight may have read the row before what asks for this (a wake-up from
      // another process) committed: it looks again if it does not run.
      inFlight.again = true;
      return;
    }
    const row = await k.store.getInvocation(id);
    if (k.own.elsewhere(row?.owner)) return; // its owner was woken instead
    if (
      row &&
      (row.status === 'running' || row.status === 'suspended' || row.status === 'backing-off')
    )
      this.resume(row);
  }
}
