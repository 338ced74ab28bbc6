import type { CallOptions, SendOptions } from '../core/context.js';
import type { Definition, ExternalClient, SendClient } from '../core/definitions.js';
import { checkDelay, parseDuration, type Duration } from '../core/duration.js';
import { errorMessage, fromErrorInfo, KeelError, ValidationError } from '../core/errors.js';
import { checkDebounce, checkThrottle, InvalidFlowControlError } from '../core/flow.js';
import type { JournalEntry } from '../core/journal.js';
import { normalize } from '../core/replay.js';
import type { InvocationRow, Store } from '../store/types.js';
import type { Admit } from './admission.js';
import type { Clock } from './clock.js';
import type { ExtensionHost } from './extension.js';
import {
  notFound,
  toInfo,
  type InvocationInfo,
  type InvokeRequest,
  type SendResult,
} from './info.js';
import { bindKernel, Kernel, type EngineOptions, type Outcome } from './kernel.js';
import { pauseInvocation, restartInvocation, resumeInvocation, retryNow } from './pause.js';
import { restartFromEntry, type RestartOptions } from './restart.js';
import { loadAwakeableSecret } from './secrets.js';
import type { WaitOptions } from './waiters.js';
import type { QueueInfo } from './queues.js';
import { traceOfInvoke } from '../observability/tracing/ingress.js';

export type { EngineLogger, EngineOptions } from './kernel.js';
export type { InvocationInfo, InvokeRequest, SendResult } from './info.js';
export type { QueueInfo } from './queues.js';
export { RestartPrefixError } from './restart.js';
export type { RestartOptions, RestartPrefixCode } from './restart.js';

/** The filters of {@link Engine.listInvocations} (and of the admin API's `GET /invocations`). */
export interface ListFilter {
  /** One status, or several: an invocation in any of them matches. */
  status?: InvocationRow['status'] | ReadonlyArray<InvocationRow['status']>;
  service?: string;
  handler?: string;
  key?: string;
  /** An error code (`error.code` of a failed or retrying invocation). */
  error?: string;
  /** `createdAt` at or after this (epoch ms). */
  since?: number;
  /** `createdAt` at or before this (epoch ms). */
  until?: number;
  /** 1 to 1000, default 50. */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

/**
 * The durable execution engine: runs invocations, journals their effects through the Store,
 * suspends what waits, resumes what is due, and recovers everything in flight at start.
 *
 * Its members are what users call: start and stop it, run handlers (`invoke`, `send`,
 * `client`, `sendClient`), wait for results (`attach`, `output`), complete awakeables, control
 * invocations (`cancel`, `kill`, `purge`, `resumePaused`) and look at them (`getInvocation`,
 * `listInvocations`, `getJournal`). Its inside (see kernel.ts) is not exported.
 *
 * @example
 * ```ts
 * const engine = new Engine({ services: [Greeter, Counter], store: openSqliteStore({ path: 'app.db' }) });
 * await engine.start();
 * const total = await engine.client(Counter, 'visits').add(1);
 * await engine.stop();
 * ```
 */
export class Engine {
  /** The store this engine was given: where everything durable lives. */
  readonly store: Store;
  /** The engine's time source (the system clock unless a fake one was given). */
  readonly clock: Clock;
  private readonly k: Kernel;

  constructor(options: EngineOptions) {
    this.k = new Kernel(options);
    this.store = this.k.store;
    this.clock = this.k.clock;
    bindKernel(this, this.k);
  }

  /** This process's id in a cluster sharing the store; undefined on an embedded store. */
  get processId(): string | undefined {
    return this.k.own.processId;
  }

  /** Recovers everything that was in flight, then starts timers and retention cleanup. */
  async start(): Promise<void> {
    const { k } = this;
    if (k.started) return;
    // Before anything runs: recovered invocations may create awakeables. Read before `started`
    // is set, so a start that failed here (the store unreachable) can be retried.
    k.awakeableSecret ??= await loadAwakeableSecret(k.store);
    if (k.started) return;
    await this.installExtensions();
    if (k.started) return;
    k.started = true;
    await k.own.start();
    await k.timers.start();
    k.queues.start();
    k.retention.schedule(0);
    for (const e of k.installed) e.started?.();
  }

  /**
   * Stops timers and drops in-memory work; everything durable resumes at the next start. First
   * it lets the step bodies in flight finish and journal their results, starting no other (at
   * most `stopGrace`, default 5 s), so they are replayed, not run again; on
   * PostgreSQL it then leaves the cluster, and the other processes adopt its invocations at once
   * (README "Scaling out on PostgreSQL"). `grace` overrides `stopGrace` for this stop (`0`: a
   * body in flight is left and its step runs again, as after a crash).
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => void engine.stop().then(() => process.exit(0)));
   * ```
   */
  async stop(options: { grace?: Duration } = {}): Promise<void> {
    const { k } = this;
    k.stopping = true;
    await k.own.stop(options.grace === undefined ? k.stopGraceMs : parseDuration(options.grace));
    k.timers.stop();
    k.queues.stop();
    k.retention.stop();
    k.dropAll();
    k.results.clear(
      new KeelError(
        'the engine stopped before the invocation finished; it resumes when the engine starts again',
        { code: 'engine_stopped', status: 503 },
      ),
    );
    await k.store.close();
    for (const e of k.installed) {
      await e
        .close?.()
        .catch((err: unknown) =>
          k.log('error', `extension "${e.name}" failed to close: ${errorMessage(err)}`),
        );
    }
  }

  /** Runs each extension's `install` once, with the host extensions see. */
  private async installExtensions(): Promise<void> {
    const { k } = this;
    if (k.installed.size === k.extensions.length) return;
    const host: ExtensionHost = {
      engine: this,
      store: k.store,
      clock: k.clock,
      get processId() {
        return k.own.processId;
      },
      invoke: (req) => this.invoke(req),
      send: (req) => this.send(req),
      provide: (key, value) => {
        k.resources.set(key.symbol, value);
      },
      log: (level, message, fields) => k.log(level, message, fields),
      metrics: k.metrics,
    };
    for (const e of k.extensions) {
      if (k.installed.has(e)) continue;
      await e.install(host);
      k.installed.add(e);
    }
  }

  /**
   * Runs a handler and resolves with its result once the result is durable. Rejects with the
   * handler's terminal error, rebuilt from its stored code as its class (`ValidationError`,
   * `RetriesExhaustedError`, ...; a `TerminalError` for codes of users' own) with its status.
   */
  async invoke(req: InvokeRequest, wait: WaitOptions = {}): Promise<unknown> {
    return this.k.invoke(this.admit(req, false), wait);
  }

  /**
   * Starts a handler without waiting for it; resolves once the invocation is durably accepted.
   *
   * With `debounce`, the sends of a burst (same target and key, closer than `period`) make one
   * invocation that starts with the last input once the key is quiet for `period` (at most
   * `maxWait` after the burst's first send); each resolves with that invocation's id. With
   * `throttle`, at most `limit` invocations start per `period` per key: the rest are scheduled
   * at the next free slot (`mode: 'delay'`, the default) or refused with `ThrottledError`
   * (code `throttled`, `retryAfterMs`; `mode: 'drop'`). Bad options: 400 `invalid_debounce` /
   * `invalid_throttle`, nothing stored. See docs/flow-control.md.
   *
   * @example
   * ```ts
   * // One reindex per document, 5 s after its last edit (at most 1 min after the first).
   * const { invocationId } = await engine.send({
   *   service: 'Search', handler: 'reindex', input: doc,
   *   debounce: { key: doc.id, period: '5s', maxWait: '1m' },
   * });
   * ```
   */
  async send(req: InvokeRequest): Promise<SendResult> {
    return this.k.send(this.admit(req, true));
  }

  /**
   * Waits for an invocation to finish and returns its result (or throws its terminal error).
   * At most {@link MAX_WAITERS} callers wait on one invocation at a time; beyond that this
   * throws `TooManyWaitersError` (429 `too_many_waiters`): poll {@link Engine.output} instead.
   * An aborted `signal` stops the wait (and frees its memory); the invocation goes on.
   */
  async attach(id: string, wait: WaitOptions = {}): Promise<unknown> {
    const outcome = await this.k.results.await(id, false, wait);
    if ('error' in outcome) throw fromErrorInfo(outcome.error);
    return outcome.output;
  }

  /** The result if the invocation has finished, else its status. */
  async output(
    id: string,
  ): Promise<
    { ready: true; outcome: Outcome } | { ready: false; status: InvocationRow['status'] }
  > {
    const row = await this.k.store.getInvocation(id);
    if (!row) throw notFound(id);
    if (row.status === 'completed') return { ready: true, outcome: { output: row.output } };
    if (row.status === 'failed') return { ready: true, outcome: { error: row.error! } };
    return { ready: false, status: row.status };
  }

  async getInvocation(id: string): Promise<InvocationInfo | undefined> {
    const row = await this.k.store.getInvocation(id);
    return row && toInfo(row);
  }

  // ---- control: awakeables, cancel, kill, purge, resume, inspection ----------------------

  /**
   * Completes an awakeable with a value. Throws `NotFoundError` (404) for an unknown id and
   * `ConflictError` (409, code `already_completed`) when it was completed before.
   */
  async resolveAwakeable(id: string, value: unknown): Promise<void> {
    let normalized: unknown;
    try {
      normalized = normalize(value, `the value for awakeable ${id}`);
    } catch (err) {
      throw new ValidationError((err as Error).message);
    }
    await this.k.completions.completeAwakeableById(id, { value: normalized });
  }

  /** Completes an awakeable with a failure; the waiting handler sees a `TerminalError`. */
  async rejectAwakeable(id: string, message: string): Promise<void> {
    await this.k.completions.completeAwakeableById(id, {
      error: { code: 'rejected', message, status: 500 },
    });
  }

  /**
   * Cancels an invocation gracefully: its handler sees a `CancelledError` at its next await
   * (sleep, call, awakeable, promise or step), can run compensations, and the calls it waits on
   * are cancelled too. An invocation that has not started yet ends at once. Throws 404 for an
   * unknown id and 409 (code `already_finished`) for a finished one.
   */
  async cancel(id: string): Promise<InvocationInfo> {
    return this.k.control.cancel(id);
  }

  /**
   * Ends an invocation immediately with the error code `killed`: no compensation runs and steps
   * in flight are abandoned. Unsafe: use it only for invocations that cannot end otherwise.
   */
  async kill(id: string): Promise<InvocationInfo> {
    return this.k.control.kill(id);
  }

  /** Deletes a finished invocation with its journal (freeing its idempotency key). 409 if not finished. */
  async purge(id: string): Promise<void> {
    return this.k.control.purge(id);
  }

  /**
   * Resumes a paused invocation: one paused by {@link Engine.pause}, or by an error whose cause
   * was fixed (non-determinism, an unreadable journal). One that had started is replayed from
   * its journal; one paused before it started starts as if new. 409 (`not_paused`) otherwise.
   *
   * @example
   * ```ts
   * await engine.pause(id);
   * // ... deploy a fix, wait for a dependency ...
   * await engine.resumePaused(id); // replays its journal: completed steps do not run again
   * ```
   */
  async resumePaused(id: string): Promise<InvocationInfo> {
    return resumeInvocation(this.k, id);
  }

  /**
   * Pauses an unfinished invocation: it gets status `paused` and does nothing until
   * {@link Engine.resumePaused} (or a kill). A running handler stops at its next wait or before
   * its next step (a step already running finishes and is recorded: a completed step is never
   * lost nor run again); a suspended, backing-off, scheduled or pending one stays parked, its
   * timers finding nothing to start. Survives restarts; on PostgreSQL the process running it is
   * told. Paused again: answers it as it is. Throws 404 for an unknown id, 409
   * (`already_finished`) for a finished one.
   *
   * @example
   * ```ts
   * const { invocationId } = await engine.send({ service: 'Migration', handler: 'run', key: 'm1' });
   * await engine.pause(invocationId); // e.g. while a downstream database is being repaired
   * await engine.resumePaused(invocationId);
   * ```
   */
  async pause(id: string): Promise<InvocationInfo> {
    return pauseInvocation(this.k, id);
  }

  /**
   * Runs a `backing-off` invocation's next attempt (or a `scheduled` one's start) now instead of
   * when its timer would. A concurrent cancel or kill wins (the change is conditional on the
   * status). Throws 404 for an unknown id, 409 (`not_waiting`) in any other status.
   *
   * @example
   * ```ts
   * // The payment provider is back: do not wait out the backoff.
   * const info = await engine.retryNow(id); // info.status === 'running'
   * ```
   */
  async retryNow(id: string): Promise<InvocationInfo> {
    return retryNow(this.k, id);
  }

  /**
   * Starts a new invocation with the same target, key and input as invocation `id` (in any
   * status) and resolves with the new one. It has no idempotency key and no caller. A
   * workflow's `run` (one per key) can be restarted once it has finished: its key passes to the
   * new run (the old invocation stays readable); an unfinished one throws 409
   * (`workflow_running`). 404 for an unknown id or a handler no longer registered.
   *
   * With `fromEntry: N` (N > 0) it restarts from a journal prefix: the new invocation's journal
   * starts as a copy of entries `0 .. N-1` of the old one (written with its insert, in one
   * write), which it replays (those steps' bodies do not run again) before it runs the rest
   * anew. The old invocation must be finished (409 `not_finished`); N may be 0 to the journal's
   * length (400 `entry_out_of_range`); every copied entry must have completed, an unfinished
   * sleep excepted, which keeps its wake-up time (409 `entry_unfinished`); a prefix holding a
   * delivered cancellation is refused (409 `entry_not_portable`); an exclusive handler's object
   * key must be free (409 `key_busy`). State and the effects of the copied calls are not rolled
   * back. `fromEntry: 0` is a plain restart. See restart.ts for the reasons.
   *
   * @example
   * ```ts
   * const failed = await engine.listInvocations({ status: 'failed', service: 'Mailer' });
   * for (const inv of failed.invocations) await engine.restart(inv.id);
   *
   * // Steps 0 and 1 (reserve, charge) succeeded, step 2 (ship) failed and its code is fixed:
   * const again = await engine.restart(orderRun, { fromEntry: 2 });
   * ```
   */
  async restart(id: string, options: RestartOptions = {}): Promise<InvocationInfo> {
    if (options.fromEntry !== undefined) return restartFromEntry(this.k, id, options.fromEntry);
    return restartInvocation(this.k, id);
  }

  /**
   * The flow-control queues of this engine's handlers (see `queue`), with their limits and
   * figures: invocations waiting and running, keys waiting, the oldest wait.
   *
   * @example
   * ```ts
   * for (const q of await engine.queues()) console.log(q.name, q.waiting, q.running);
   * ```
   */
  async queues(): Promise<QueueInfo[]> {
    return this.k.queues.info();
  }

  /**
   * Invocations, newest first, matching every filter given; `cursor` pages through older ones.
   * `status` may be a list (any of them), `error` is an error code, `since`/`until` bound
   * `createdAt` (epoch ms, inclusive).
   *
   * @example
   * ```ts
   * const { invocations, nextCursor } = await engine.listInvocations({
   *   status: ['failed', 'backing-off'], service: 'Orders', since: Date.now() - 3_600_000,
   * });
   * ```
   */
  async listInvocations(
    filter: ListFilter,
  ): Promise<{ invocations: InvocationInfo[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 1000);
    const beforeSeq = filter.cursor === undefined ? undefined : Number(filter.cursor);
    if (beforeSeq !== undefined && !Number.isSafeInteger(beforeSeq)) {
      throw new ValidationError(
        `cursor "${filter.cursor}" is not valid: pass the nextCursor of a previous page`,
      );
    }
    const rows = await this.k.store.listInvocations({
      status: filter.status,
      service: filter.service,
      handler: filter.handler,
      key: filter.key,
      errorCode: filter.error,
      createdSince: filter.since,
      createdUntil: filter.until,
      limit: limit + 1,
      beforeSeq,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      invocations: page.map(toInfo),
      ...(rows.length > limit && last?.seq !== undefined ? { nextCursor: String(last.seq) } : {}),
    };
  }

  /** The journal of an invocation, entry by entry. 404 for an unknown id. */
  async getJournal(id: string): Promise<Array<JournalEntry & { index: number }>> {
    const row = await this.k.store.getInvocation(id);
    if (!row) throw notFound(id);
    return (await this.k.store.getJournal(id)).map(([index, e]) => ({ index, ...e }));
  }

  /** A typed request-response client, for use outside handlers (tests, scripts, servers). */
  client<D extends Definition>(def: D, key?: string): ExternalClient<D> {
    const out: Record<string, unknown> = {};
    for (const handler of Object.keys(def.handlers)) {
      out[handler] = (input?: unknown, options?: CallOptions) =>
        this.invoke({
          service: def.name,
          handler,
          key,
          input,
          idempotencyKey: options?.idempotencyKey,
        });
    }
    return out as ExternalClient<D>;
  }

  /**
   * A typed one-way client, for use outside handlers. `options` apply to every send of it
   * (`delay`, `debounce`, `throttle`: see {@link Engine.send}).
   *
   * @example
   * ```ts
   * await engine.sendClient(Search, undefined, { debounce: { key: doc.id, period: '5s' } }).reindex(doc);
   * ```
   */
  sendClient<D extends Definition>(def: D, key?: string, options?: SendOptions): SendClient<D> {
    const delayMs = options?.delay === undefined ? undefined : parseDuration(options.delay);
    const out: Record<string, unknown> = {};
    for (const handler of Object.keys(def.handlers)) {
      out[handler] = (input?: unknown, callOptions?: CallOptions) => ({
        invocationId: this.send({
          service: def.name,
          handler,
          key,
          input,
          delayMs,
          idempotencyKey: callOptions?.idempotencyKey ?? options?.idempotencyKey,
          debounce: options?.debounce,
          throttle: options?.throttle,
        }).then((r) => r.invocationId),
      });
    }
    return out as SendClient<D>;
  }

  /**
   * The request, with its target resolved (404 for an unknown one, 400 for a bad delay or bad
   * debounce or throttle options).
   */
  private admit(req: InvokeRequest, send: boolean): Admit {
    if (req.delayMs !== undefined) checkDelay(req.delayMs);
    if (!send && (req.debounce !== undefined || req.throttle !== undefined))
      throw new InvalidFlowControlError(
        'debounce and throttle apply to sends only: use engine.send (or /send on the ingress)',
        req.debounce !== undefined ? 'invalid_debounce' : 'invalid_throttle',
      );
    return {
      ...this.k.admission.resolve(req.service, req.handler, req.key),
      input: req.input,
      idempotencyKey: req.idempotencyKey,
      delayMs: req.delayMs,
      ...(req.debounce === undefined ? {} : { debounce: checkDebounce(req.debounce) }),
      ...(req.throttle === undefined ? {} : { throttle: checkThrottle(req.throttle) }),
      ...traceOfInvoke(req, send),
    };
  }
}
