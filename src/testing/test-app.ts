import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallOptions, SendOptions } from '../core/context.js';
import type {
  Definition,
  ExternalClient,
  ObjectDefinition,
  SendClient,
  ServiceDefinition,
  WorkflowDefinition,
} from '../core/definitions.js';
import { parseDuration, type Duration } from '../core/duration.js';
import type { JournalEntry } from '../core/journal.js';
import {
  Engine,
  type EngineOptions,
  type InvocationInfo,
  type ListFilter,
  type RestartOptions,
} from '../engine/engine.js';
import { kernelOf, type Outcome } from '../engine/kernel.js';
import type { InvocationStatus } from '../store/types.js';
import { TestAppError } from './errors.js';
import { FakeClock } from './fake-clock.js';
import { Faults } from './faults.js';
import { IdleWatch } from './idle.js';
import { ReplayChecker, type ReplayFailure } from './replay-check.js';
import { watchStore, type WatchedStore } from './watched-store.js';
import { TestKit, type KitOptions } from './kit.js';
import { copyMigratedTemplate } from './template.js';
import type { MockFunction } from './mocks.js';
import type { TestWebhooks } from './webhooks.js';

/**
 * Options of {@link testApp}: the engine's own (`services`, `extensions`, `retry`,
 * `suspendAfter`, ...) without `store` and `clock`, which the test app makes, plus its own.
 */
export interface TestAppOptions extends Omit<EngineOptions, 'store' | 'clock'>, KitOptions {
  /**
   * How long finished invocations (their outputs, journals and idempotency keys) are kept, in
   * fake time. Default `3650d` here, not the engine's `24h`: a test that advances the clock by
   * weeks can still read what finished on the way. Pass `'24h'` to test retention itself.
   */
  retention?: Duration;
  /** Where the fake clock starts (epoch ms or a Date). Default 2026-01-01T00:00:00Z. */
  startAt?: number | Date;
  /**
   * How long (real time) `idle()` waits without seeing any progress before it gives up with a
   * `TestAppError` (`idle_stalled`) naming what is still busy. Default `4s`, under Vitest's and
   * Jest's default test timeout of 5 s, so the message shows rather than a bare timeout.
   */
  idleTimeout?: Duration;
  /**
   * Replay checking. `'every-step'`: after every journal write of every invocation, its handler
   * is run again from scratch over the journal so far (beside the live run, which it does not
   * touch), with `Date.now()`, `new Date()`, `Math.random()`, `crypto.randomUUID()` and
   * `performance.now()` returning other values than the live run saw, and `fetch`/`http.request`
   * reported. If the replay attempts anything else than the journal recorded (another step,
   * another state value, call input, sleep duration or result), the client call, `idle()`,
   * `advance()` or `runUntilIdle()` in progress rejects with a `TestAppError`
   * (`replay_diverged`) naming the invocation, the handler and the entry; see
   * {@link TestApp.replayFailures}. Default `'off'`. Slower: use it in a few tests per service.
   *
   * @example
   * ```ts
   * await using t = await testApp({ services: [OrderSaga], replay: 'every-step' });
   * await t.workflow(OrderSaga, 'o-1').run(order); // rejects if the saga is not deterministic
   * expect(t.replayFailures).toEqual([]);
   * ```
   */
  replay?: 'off' | 'every-step';
}

/** A one-way client of the test app: one method per handler, resolving with the invocation's id. */
export type TestSendClient<D extends Definition> = {
  [K in keyof D['handlers']]: (...args: Parameters<SendClient<D>[K]>) => Promise<string>;
};

/** A log line the engine or a handler (`ctx.log`) wrote, kept by the test app. */
export interface TestLogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

/** The filters of {@link TestApp.invocations}: those of `Engine.listInvocations`, without paging. */
export interface InvocationQuery extends Omit<ListFilter, 'cursor' | 'limit' | 'service'> {
  /** A service name, or the definition itself. */
  service?: string | Definition;
}

/** Options of {@link TestApp.runUntilIdle}. */
export interface RunUntilIdleOptions {
  /**
   * While nothing is runnable and a durable timer (a sleep, a retry's backoff, a delayed start)
   * waits, move the fake clock to it and go on. Default false: wait only for what can run now.
   */
  skipTime?: boolean;
  /**
   * How far time may be skipped in all; a timer beyond it throws a `TestAppError`
   * (`time_limit`) listing what still waits, so a workflow that sleeps forever fails the test
   * instead of hanging it. Default `365d`.
   */
  limit?: Duration;
}

const DEFAULT_LIMIT = '365d';
const TEST_RETENTION = '3650d';
const UNFINISHED: InvocationStatus[] = [
  'pending',
  'scheduled',
  'queued',
  'running',
  'suspended',
  'backing-off',
  'paused',
];

/**
 * An engine for tests, with everything a test needs around it: see {@link testApp}.
 *
 * Its clients work exactly as `engine.client` does (and as `ctx.serviceClient`, `objectClient`
 * and `workflowClient` do in a handler): typed from the definition, resolving with the result
 * once it is durable, rejecting with the handler's terminal error.
 */
export class TestApp implements AsyncDisposable {
  /** The engine under test. */
  readonly engine: Engine;
  /** The fake clock the engine runs on: it moves only with {@link advance} and {@link runUntilIdle}. */
  readonly clock: FakeClock;
  /** The SQLite file of this test app (in `os.tmpdir()`, removed by {@link close}). */
  readonly path: string;
  /** Every log line written so far (they are kept here rather than printed). */
  readonly logs: TestLogLine[];
  /**
   * Failure injection: make a step or a handler fail, delay a handler past a caller's timeout,
   * make the store fail a write (see {@link Faults}).
   */
  readonly faults: Faults;
  /** @internal The store wrapper the engine writes through (faults and crash checks intercept it). */
  readonly watched: WatchedStore;
  /**
   * Mocks an integration (installed with the `integrations` option): its requests are answered
   * as scripted and recorded, through its real retry, breaker and rate-limit policies. The
   * answer helpers are on it: `t.mock.fail(503)`, `t.mock.timeout()`, ... (see docs/testing.md).
   *
   * @example
   * ```ts
   * const payments = t.mock(stripe, { create_charge: [t.mock.fail(503, { times: 2 }), { id: 'ch_1' }] });
   * ```
   */
  readonly mock: MockFunction;
  /** Signed inbound webhooks and captured outbound deliveries (with the `webhooks` option). */
  readonly webhooks: TestWebhooks;
  private readonly kit: TestKit;
  private readonly watch: IdleWatch;
  private closed: Promise<void> | undefined;

  /** Use {@link testApp}. */
  constructor(parts: {
    engine: Engine;
    clock: FakeClock;
    path: string;
    logs: TestLogLine[];
    store: WatchedStore;
    idleTimeoutMs: number;
    cleanup: () => void;
    /** Starts a test app on the same directory (see {@link restartApp}). */
    reopen?: (startAt: number) => Promise<TestApp>;
    kit?: TestKit;
    replay?: ReplayChecker;
  }) {
    this.replay = parts.replay;
    this.engine = parts.engine;
    this.clock = parts.clock;
    this.path = parts.path;
    this.logs = parts.logs;
    this.cleanup = parts.cleanup;
    this.reopen = parts.reopen;
    this.kit = parts.kit ?? new TestKit(parts.clock, {});
    this.mock = this.kit.mocks.fn();
    this.webhooks = this.kit.webhooks(this.engine, () => this.idle());
    this.watched = parts.store;
    // Before the engine starts: runners that recovery starts at once are instrumented too.
    this.faults = new Faults(kernelOf(this.engine), parts.store);
    this.watch = new IdleWatch(
      () => kernelOf(this.engine),
      parts.store,
      parts.clock,
      parts.idleTimeoutMs,
    );
  }

  private cleanup: () => void;
  private restarted = false;
  private readonly reopen: ((startAt: number) => Promise<TestApp>) | undefined;
  private readonly replay: ReplayChecker | undefined;

  /**
   * What replay checking (`replay: 'every-step'`) found so far, oldest first; always empty when
   * it is off. Each one was also thrown once, by the client call or `idle()` in progress.
   *
   * @example
   * ```ts
   * await expect(t.service(Stamp).now()).rejects.toMatchObject({ code: 'replay_diverged' });
   * expect(t.replayFailures[0]).toMatchObject({ handler: 'Stamp.now', step: 'set "at"' });
   * ```
   */
  get replayFailures(): readonly ReplayFailure[] {
    return this.replay?.failures ?? [];
  }

  /** A client whose calls also fail with a replay divergence (when replay checking is on). */
  private guarded<C extends object>(client: C): C {
    this.checkOpen();
    return this.replay ? this.replay.guardClient(client) : client;
  }

  // ---- clients -------------------------------------------------------------------------

  /**
   * A request-response client of a service.
   *
   * @example
   * ```ts
   * expect(await t.service(Greeter).greet('Ada')).toBe('Hello, Ada!');
   * ```
   */
  service<D extends ServiceDefinition>(def: D): ExternalClient<D> {
    return this.guarded(this.engine.client(def));
  }

  /**
   * A request-response client of one key of a keyed object.
   *
   * @example
   * ```ts
   * expect(await t.object(Counter, 'visits').add(2)).toBe(2);
   * ```
   */
  object<D extends ObjectDefinition>(def: D, key: string): ExternalClient<D> {
    return this.guarded(this.engine.client(def, key));
  }

  /**
   * A request-response client of one workflow key: `run` (once per key) and its other handlers.
   *
   * @example
   * ```ts
   * const result = await t.workflow(Signup, 'ada').run({ email: 'ada@example.com' });
   * ```
   */
  workflow<D extends WorkflowDefinition>(def: D, key: string): ExternalClient<D> {
    return this.guarded(this.engine.client(def, key));
  }

  /**
   * A one-way client of a service: each call resolves with the id of the invocation it
   * started, once it is durably accepted. `options` (`delay`, `debounce`, `throttle`,
   * `idempotencyKey`) apply to every send of it.
   *
   * @example
   * ```ts
   * const id = await t.serviceSend(Mailer, { delay: '1h' }).remind({ userId: 'ada' });
   * ```
   */
  serviceSend<D extends ServiceDefinition>(def: D, options?: SendOptions): TestSendClient<D> {
    this.checkOpen();
    return sendIds(this.engine.sendClient(def, undefined, options));
  }

  /**
   * A one-way client of one key of a keyed object (see {@link serviceSend}).
   *
   * @example
   * ```ts
   * const id = await t.objectSend(Counter, 'visits').add(1);
   * await t.idle();
   * expect(await t.state(Counter, 'visits')).toEqual({ total: 1 });
   * ```
   */
  objectSend<D extends ObjectDefinition>(
    def: D,
    key: string,
    options?: SendOptions,
  ): TestSendClient<D> {
    this.checkOpen();
    return sendIds(this.engine.sendClient(def, key, options));
  }

  /**
   * A one-way client of one workflow key (see {@link serviceSend}).
   *
   * @example
   * ```ts
   * const id = await t.workflowSend(Signup, 'ada').run({ email: 'ada@example.com' });
   * await t.runUntilIdle({ skipTime: true });
   * expect(await t.output(id)).toMatchObject({ ready: true });
   * ```
   */
  workflowSend<D extends WorkflowDefinition>(
    def: D,
    key: string,
    options?: SendOptions,
  ): TestSendClient<D> {
    this.checkOpen();
    return sendIds(this.engine.sendClient(def, key, options));
  }

  /**
   * Waits for an invocation's result (or throws its terminal error), as `engine.attach`.
   *
   * @example
   * ```ts
   * const id = await t.workflowSend(Signup, 'ada').run({ email: 'ada@example.com' });
   * await t.advance('1d');
   * expect(await t.attach(id)).toBe('done');
   * ```
   */
  attach<T = unknown>(id: string): Promise<T> {
    const p = this.engine.attach(id) as Promise<T>;
    return this.replay ? this.replay.guard(p) : p;
  }

  /**
   * The outcome if the invocation has finished, else its status; never waits.
   *
   * @example
   * ```ts
   * expect(await t.output(id)).toEqual({ ready: true, outcome: { output: 3 } });
   * ```
   */
  output(
    id: string,
  ): Promise<{ ready: true; outcome: Outcome } | { ready: false; status: InvocationStatus }> {
    return this.engine.output(id);
  }

  /**
   * Completes an awakeable with a value, as an outside system would.
   *
   * @example
   * ```ts
   * await t.resolveAwakeable(approvalId, { approved: true });
   * ```
   */
  resolveAwakeable(id: string, value: unknown): Promise<void> {
    return this.engine.resolveAwakeable(id, value);
  }

  /**
   * Fails an awakeable: its waiter sees a `TerminalError` with `message`.
   *
   * @example
   * ```ts
   * await t.rejectAwakeable(approvalId, 'rejected by reviewer');
   * ```
   */
  rejectAwakeable(id: string, message: string): Promise<void> {
    return this.engine.rejectAwakeable(id, message);
  }

  // ---- admin operations (the engine's, see Engine for what each does) -------------------

  /**
   * Cancels an invocation gracefully (its handler sees a `CancelledError` and can compensate).
   *
   * @example
   * ```ts
   * await t.cancel(id);
   * await t.idle();
   * ```
   */
  cancel(id: string): Promise<InvocationInfo> {
    return this.engine.cancel(id);
  }

  /**
   * Ends an invocation at once with the error code `killed`: no compensation runs.
   *
   * @example
   * ```ts
   * await t.kill(id);
   * ```
   */
  kill(id: string): Promise<InvocationInfo> {
    return this.engine.kill(id);
  }

  /**
   * Pauses an unfinished invocation until {@link resume}.
   *
   * @example
   * ```ts
   * await t.pause(id);
   * ```
   */
  pause(id: string): Promise<InvocationInfo> {
    return this.engine.pause(id);
  }

  /**
   * Resumes a paused invocation (`Engine.resumePaused`): it replays its journal.
   *
   * @example
   * ```ts
   * await t.resume(id);
   * await t.idle();
   * ```
   */
  resume(id: string): Promise<InvocationInfo> {
    return this.engine.resumePaused(id);
  }

  /**
   * Starts the invocation again, as a new one (optionally from a journal prefix); resolves with
   * the new invocation.
   *
   * @example
   * ```ts
   * const again = await t.restart(failedId);
   * await t.idle();
   * expect(await t.output(again.id)).toMatchObject({ ready: true });
   * ```
   */
  restart(id: string, options?: RestartOptions): Promise<InvocationInfo> {
    return this.engine.restart(id, options);
  }

  // ---- assertions ------------------------------------------------------------------------

  /**
   * Every state value of an object or workflow key, as a plain object (`{}` when it has none).
   *
   * @example
   * ```ts
   * expect(await t.state(Counter, 'visits')).toEqual({ total: 3 });
   * ```
   */
  async state<S extends Record<string, unknown> = Record<string, unknown>>(
    def: ObjectDefinition | WorkflowDefinition,
    key: string,
  ): Promise<S> {
    const { store } = this.engine;
    const out: Record<string, unknown> = {};
    for (const name of await store.getStateKeys(def.name, key))
      out[name] = await store.getState(def.name, key, name);
    return out as S;
  }

  /**
   * The journal of an invocation, entry by entry (`kind`, `name`, `done`, `value`, ...).
   *
   * @example
   * ```ts
   * const steps = (await t.journal(id)).filter((e) => e.kind === 'run').map((e) => e.name);
   * expect(steps).toEqual(['reserve', 'charge']);
   * ```
   */
  journal(id: string): Promise<Array<JournalEntry & { index: number }>> {
    return this.engine.getJournal(id);
  }

  /**
   * Every invocation matching the filters, newest first (all pages).
   *
   * @example
   * ```ts
   * const failed = await t.invocations({ service: OrderSaga, status: 'failed' });
   * expect(failed).toHaveLength(0);
   * ```
   */
  async invocations(filter: InvocationQuery = {}): Promise<InvocationInfo[]> {
    const { service, ...rest } = filter;
    const name = typeof service === 'string' || service === undefined ? service : service.name;
    const out: InvocationInfo[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.engine.listInvocations({
        ...rest,
        ...(name === undefined ? {} : { service: name }),
        limit: 1000,
        ...(cursor === undefined ? {} : { cursor }),
      });
      out.push(...page.invocations);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return out;
  }

  // ---- time --------------------------------------------------------------------------------

  /**
   * Resolves once nothing is runnable: every invocation has finished or waits for something
   * only time or the test can bring (a timer, an awakeable, a durable promise), no journal is
   * loading, no store write is pending, and the fake clock's timers due now have fired. Throws
   * a `TestAppError` (`idle_stalled`) if nothing progresses for `idleTimeout` while something
   * is still busy.
   *
   * @example
   * ```ts
   * await t.objectSend(Counter, 'visits').add(1);
   * await t.idle();
   * expect(await t.state(Counter, 'visits')).toEqual({ total: 1 });
   * ```
   */
  async idle(): Promise<void> {
    this.checkOpen();
    await this.watch.idle();
    // Replay checks read the store only: they leave the engine idle.
    if (this.replay) await this.replay.settle();
  }

  /**
   * Moves the fake clock forward by `d` (`'30d'`, `'1h30m'`, or milliseconds), firing every
   * timer due on the way in time order (sleeps, retries' backoffs, delayed starts, the engine's
   * own timers) and waiting, after each, until its consequences have run. Then waits for
   * {@link idle}.
   *
   * @example
   * ```ts
   * const id = await t.workflowSend(Trial, 'ada').run();
   * await t.advance('30d'); // the 30-day ctx.sleep fires, no real waiting
   * expect(await t.output(id)).toMatchObject({ ready: true });
   * ```
   */
  async advance(d: Duration): Promise<void> {
    const ms = parseDuration(d);
    await this.idle();
    await this.clock.advance(ms, () => this.watch.quiesce());
    await this.idle();
  }

  /**
   * Waits for {@link idle}; with `skipTime`, then moves the fake clock straight to the next
   * durable timer (a sleep, a backoff, a delayed start), lets what it wakes run, and repeats
   * until no durable timer is left: a workflow that sleeps for weeks completes at once, as in
   * Temporal's time-skipping test environment (no server here). Throws a `TestAppError`
   * (`time_limit`) instead of skipping past `limit` (default `365d`), listing what still waits.
   *
   * @example
   * ```ts
   * const id = await t.workflowSend(Onboarding, 'ada').run(); // sleeps 1d, then 7d, then 30d
   * await t.runUntilIdle({ skipTime: true });
   * expect(await t.output(id)).toMatchObject({ ready: true });
   * ```
   */
  async runUntilIdle(options: RunUntilIdleOptions = {}): Promise<void> {
    const limitMs = parseDuration(options.limit ?? DEFAULT_LIMIT);
    const deadline = this.clock.now() + limitMs;
    await this.idle();
    if (!options.skipTime) return;
    for (;;) {
      const [next] = await this.engine.store.dueTimers(Number.MAX_SAFE_INTEGER, 1);
      if (!next) return;
      if (next.fireAt > deadline) throw await this.timeLimit(limitMs, next.fireAt);
      // A durable timer already due that idle() did not fire is one the engine does not hold
      // yet (its window reloads on a timer of its own): move to the clock's next timer instead.
      const to =
        next.fireAt > this.clock.now() ? next.fireAt : (this.clock.nextTimerAt ?? next.fireAt);
      if (to <= this.clock.now())
        throw new TestAppError(
          `the timer of invocation ${next.invocationId} (entry ${next.index}) was due at ` +
            `${iso(next.fireAt)} but did not fire, and the engine has no timer of its own left ` +
            'that could load it: the engine lost track of it (worth reporting as a bug)',
          'idle_stalled',
        );
      await this.advance(Math.min(to, deadline) - this.clock.now());
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Stops the engine and deletes the SQLite file (and its directory). Safe to call twice.
   *
   * @example
   * ```ts
   * afterEach(() => t.close());
   * ```
   */
  close(): Promise<void> {
    this.replay?.close();
    this.closed ??= this.kit
      .close()
      // A test's end, not a deploy: a body it left waiting is not waited for (restartApp,
      // which is a deploy, stops with the engine's grace).
      .then(() => this.engine.stop(this.restarted ? {} : { grace: 0 }))
      .catch(() => undefined)
      .finally(() => this.cleanup());
    return this.closed;
  }

  /**
   * Restarts the app as a deploy or a crash would: this engine stops (`crash: true`: dies as
   * `kill -9` would, in-memory work lost, nothing handed over), and a new engine starts on the
   * same SQLite file with the same options, the fake clock where it was. Resolves with the new
   * test app, which owns the file from then on (closing it removes it); this one is closed.
   * Mocks, faults and captured webhooks belong to the old app and are not carried over.
   *
   * @example
   * ```ts
   * await t.workflowSend(OrderSaga, 'o-1').run(order);
   * t = await t.restartApp({ crash: true });
   * await t.runUntilIdle({ skipTime: true }); // recovery finishes what the crash cut off
   * ```
   */
  async restartApp(options: { crash?: boolean } = {}): Promise<TestApp> {
    this.checkOpen();
    if (!this.reopen) throw new TestAppError('this test app cannot be restarted', 'closed');
    // The new app removes the directory when it closes; this one must leave it.
    const cleanup = this.cleanup;
    this.cleanup = () => undefined;
    this.restarted = true;
    if (options.crash) await kernelOf(this.engine).crash();
    await this.close();
    try {
      return await this.reopen(this.clock.now());
    } catch (err) {
      cleanup();
      throw err;
    }
  }

  /** `await using t = await testApp(...)` closes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private checkOpen(): void {
    if (this.restarted)
      throw new TestAppError(
        'this test app was restarted: use the test app restartApp() resolved with',
        'closed',
      );
    if (this.closed) throw new TestAppError('the test app is closed', 'closed');
  }

  private async timeLimit(limitMs: number, nextAt: number): Promise<TestAppError> {
    const waiting = await this.invocations({ status: UNFINISHED });
    const lines = waiting
      .slice(0, 10)
      .map(
        (i) =>
          `${i.id} ${i.target} (${i.status}${i.nextAttemptAt ? `, next attempt at ${i.nextAttemptAt}` : ''})`,
      );
    const more = waiting.length > 10 ? ` and ${waiting.length - 10} more` : '';
    return new TestAppError(
      `runUntilIdle({ skipTime: true }) stops at its limit of ${span(limitMs)}: the next timer ` +
        `is at ${iso(nextAt)}, the clock is at ${iso(this.clock.now())}. Still waiting: ` +
        `${lines.join('; ') || 'nothing'}${more}. A workflow that sleeps or retries forever ` +
        'never goes idle: raise `limit`, or check its progress with advance() instead.',
      'time_limit',
    );
  }
}

/**
 * Starts an engine for a test: a fresh SQLite file in `os.tmpdir()` (durability `'os'`: a
 * kill -9 of the test process loses nothing, and no fsync slows the test), a {@link FakeClock},
 * the typed clients handlers use, the admin operations, state and journal reads for
 * assertions, and control of time (`idle`, `advance`, `runUntilIdle`). Log lines are kept in
 * `t.logs` rather than printed (pass `logger` to change that). Close it with `t.close()`, or
 * let `await using` do it.
 *
 * @example
 * ```ts
 * import { testApp } from 'keel/testing';
 *
 * test('counts', async () => {
 *   await using t = await testApp({ services: [Counter] });
 *   await t.object(Counter, 'visits').add(2);
 *   expect(await t.state(Counter, 'visits')).toEqual({ total: 2 });
 * });
 * ```
 */
export async function testApp(options: TestAppOptions): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-test-'));
  // A copy of a database this process migrated once: no schema to create per test app.
  await copyMigratedTemplate(join(dir, 'keel.db'));
  return testAppIn(dir, options);
}

/**
 * {@link testApp} on the SQLite file `keel.db` in `dir`, which may hold what an earlier engine
 * wrote (a crash check starts the engine that recovers it this way). Closing it deletes `dir`.
 */
export async function testAppIn(dir: string, options: TestAppOptions): Promise<TestApp> {
  const { startAt, idleTimeout, integrations, webhooks, replay, ...engineOptions } = options;
  const idleTimeoutMs = parseDuration(idleTimeout ?? '4s');
  // Loaded here, not at the top: `keel/testing`'s FakeClock alone needs no database driver.
  const { openSqliteStore } = await import('../store/sqlite/index.js');
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const path = join(dir, 'keel.db');
  let checker: ReplayChecker | undefined;
  try {
    const clock = new FakeClock(startAt instanceof Date ? startAt.getTime() : startAt);
    const logs: TestLogLine[] = [];
    const kit = new TestKit(clock, {
      ...(integrations ? { integrations } : {}),
      ...(webhooks ? { webhooks } : {}),
    });
    const sqlite = openSqliteStore({ path, durability: 'os' });
    checker = replay === 'every-step' ? new ReplayChecker(sqlite) : undefined;
    const store = watchStore(checker ? checker.wrap(sqlite) : sqlite);
    const engine = new Engine({
      logger: (level, message, fields) => logs.push({ level, message, fields }),
      retention: TEST_RETENTION,
      ...engineOptions,
      extensions: kit.extensions(engineOptions.extensions),
      store: store.store,
      clock,
    });
    checker?.attach(engine);
    const t = new TestApp({
      ...{ engine, clock, path, logs, store, idleTimeoutMs, cleanup, kit },
      reopen: (at: number) => testAppIn(dir, { ...options, startAt: at }),
      ...(checker ? { replay: checker } : {}),
    });
    try {
      await engine.start();
      kit.started();
    } catch (err) {
      await t.close();
      throw err;
    }
    return t;
  } catch (err) {
    checker?.close();
    cleanup();
    throw err;
  }
}

/** A send client whose methods resolve with the invocation id. */
function sendIds<D extends Definition>(client: SendClient<D>): TestSendClient<D> {
  const out: Record<string, unknown> = {};
  for (const [name, send] of Object.entries(client)) {
    out[name] = (input?: unknown, options?: CallOptions) =>
      (send as (i?: unknown, o?: CallOptions) => { invocationId: Promise<string> })(input, options)
        .invocationId;
  }
  return out as TestSendClient<D>;
}

/** `30d`, `1d 2h`, `90s`, `250ms`: a span as a reader would write it. */
function span(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const parts: string[] = [];
  let left = ms;
  for (const [unit, size] of units) {
    if (left >= size) {
      parts.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    }
  }
  if (left > 0 || parts.length === 0) parts.push(`${left}ms`);
  return parts.join(' ');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
