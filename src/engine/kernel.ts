import type { Logger } from '../core/context.js';
import type { Duration } from '../core/duration.js';
import { parseDuration } from '../core/duration.js';
import {
  errorMessage,
  fromErrorInfo,
  KeelError,
  toErrorInfo,
  UsageError,
  type ErrorInfo,
} from '../core/errors.js';
import { type JournalEntry } from '../core/journal.js';
import { resolveRetry, type ResolvedRetryPolicy, type RetryPolicy } from '../core/retry.js';
import type { Definition } from '../core/definitions.js';
import { StoreError } from '../store/errors.js';
import type { Store } from '../store/types.js';
import { defaultEngineLogger } from '../observability/log.js';
import { EngineMetrics, metricsEnabled } from '../observability/metrics/engine-metrics.js';
import { Admission, type Admit } from './admission.js';
import { systemClock, type Clock } from './clock.js';
import { Completions } from './completions.js';
import { Control } from './control.js';
import { FlowControl } from './flow-control.js';
import type { Engine } from './engine.js';
import type { EngineExtension } from './extension.js';
import type { Mount } from '../http/mount.js';
import type { SendResult } from './info.js';
import { RunnerHost } from './host.js';
import { ClusterOwnership, EmbeddedOwnership, type Ownership } from './ownership.js';
import { Outcomes } from './outcome.js';
import { Registry } from './registry.js';
import { Results } from './results.js';
import { Retention } from './retention.js';
import { Queues } from './queues.js';
import type { Runner } from './runner.js';
import { fireTimer } from './timer-firing.js';
import { TimerService } from './timers.js';
import type { WaitOptions } from './waiters.js';

/** How long background work that failed (the store unreachable) waits before it runs again. */
export const RETRY_LATER_MS = 1000;

/**
 * Options of {@link Engine}: `services` and `store` are required; every other field documents
 * its default.
 */
export interface EngineOptions {
  /** The services, objects and workflows this engine runs. */
  services: Definition[];
  /** Where everything durable lives (SQLite: `openSqliteStore`). */
  store: Store;
  /** Time source; a fake clock in tests. Default: the system clock. */
  clock?: Clock;
  /** Default retry policy of every handler (see `RetryPolicy` for its defaults). */
  retry?: RetryPolicy;
  /** How long finished invocations, their journals and idempotency keys are kept. Default `24h`. */
  retention?: Duration;
  /** How long a waiting invocation stays in memory before it suspends. Default `1s`. */
  suspendAfter?: Duration;
  /**
   * Where engine and handler logs go. Default: Keel's pino logger (`keelLogger()`): JSON lines
   * on standard output (human-readable on a terminal), `info` and above.
   */
  logger?: EngineLogger;
  /**
   * Shared stores (PostgreSQL): how long a process's invocations stay its own after its last
   * heartbeat; after that another process takes them over. Default `10s`.
   */
  lease?: Duration;
  /**
   * How long a clean stop (`Engine.stop`) waits for the step bodies in flight to finish, so that
   * their results are journaled and replayed rather than run again; `0` waits for none (a body
   * still running then runs again at the next start, or in the process that adopts it, as after
   * a crash). Default `5s`.
   */
  stopGrace?: Duration;
  /** Extensions (webhooks, integrations, ...): see `EngineExtension`. Default none. */
  extensions?: readonly EngineExtension[];
  /**
   * Prometheus metrics (`GET /metrics` on the admin API; see docs/observability.md). `false`
   * turns them off. Default: on, unless the environment says `KEEL_METRICS=0`.
   */
  metrics?: boolean;
}

/**
 * A sink for log lines; an invocation's `fields` carry its `invocationId`, `service`, `handler`,
 * `key` (objects and workflows) and `target`, a `ctx.log` call's extra arguments `args`.
 * Replaceable; Keel's own is `toEngineLogger(createLogger())` (pino, see docs/observability.md).
 */
export type EngineLogger = (
  level: keyof Logger,
  message: string,
  fields: Record<string, unknown>,
) => void;

/** How an invocation ended: its output or its terminal error. */
export type Outcome = { output: unknown } | { error: ErrorInfo };

/** An invocation whose journal (and current row) is loading for a resume. */
export interface Loading {
  loading: true;
  /** Completions that arrived while it loaded. */
  pending: Array<[number, JournalEntry]>;
  /** Another resume was asked for meanwhile: look at the row again if this one does not run. */
  again: boolean;
  /** It finished here meanwhile: the row read may predate that and must not start a replay. */
  finished: boolean;
}

/** A step body an ended attempt left running (see `Kernel.strayBodies`). */
export interface StrayBody {
  name: string;
  body: Promise<unknown>;
}

/** See `Kernel.strayBodies`. */
export const MAX_STRAY_INVOCATIONS = 1000;

/**
 * The inside of one engine: its configuration, the in-memory state every part shares, and the
 * parts themselves. Each part owns one responsibility and reaches the others through here:
 *
 * - {@link Admission}: creating invocations, starting them, replaying them (admission.ts)
 * - {@link RunnerHost}: what a running handler asks of the engine (host.ts)
 * - {@link Completions}: completing what handlers wait for: entries, awakeables, promises
 * - {@link Outcomes}: suspending, retrying, pausing and finishing attempts (outcome.ts)
 * - {@link Control}: an operator's cancel, kill, purge and resume (control.ts)
 * - {@link Results}: callers waiting for an invocation's result (results.ts)
 * - {@link Ownership}: who runs an invocation and holds its object key: this process alone
 *   (embedded store) or one process of a cluster sharing the store (ownership.ts)
 * - {@link Retention}: deleting what outlived its retention (retention.ts)
 *
 * Nothing here is exported from the package: users hold an `Engine`, extensions an
 * `ExtensionHost`.
 */
export class Kernel {
  readonly registry: Registry;
  readonly store: Store;
  readonly clock: Clock;
  readonly defaultRetry: ResolvedRetryPolicy;
  readonly retentionMs: number;
  /** See `EngineOptions.stopGrace`. */
  readonly stopGraceMs: number;
  readonly suspendAfterMs: number;
  private readonly logger: EngineLogger;
  readonly timers: TimerService;
  /** This engine's metrics; undefined when they are off (`metrics: false`, `KEEL_METRICS=0`). */
  readonly metrics: EngineMetrics | undefined;

  /** Invocations executing in this process. */
  readonly active = new Map<string, Runner>();
  /** Invocations whose journal is loading for a replay. */
  readonly loading = new Map<string, Loading>();
  /**
   * Invocations dropped from memory whose status write (finished, suspended, backing off,
   * paused) is still in flight: the sweep must not take their 'running' row for a lost wake-up.
   */
  readonly settling = new Set<string>();
  /** Cancellations requested while an invocation's journal was loading. */
  readonly cancelRequests = new Set<string>();
  /**
   * Invocations an operator's pause is being recorded for (see pause.ts): no attempt of theirs
   * starts here meanwhile, whatever a concurrent resume read before the pause was durable.
   */
  readonly pausing = new Set<string>();
  /**
   * Step bodies that were still running when their attempt ended without finishing the
   * invocation (a sibling step's retry, a pause), by invocation and journal index, settled or
   * not: the next attempt here that reaches the same step takes that execution's outcome
   * instead of running the body again (see `Runner.runStepBody`). They leave when taken, when
   * the invocation finishes here, when the engine stops, and, oldest first, past
   * {@link MAX_STRAY_INVOCATIONS} invocations (those were taken over elsewhere or killed).
   */
  readonly strayBodies = new Map<string, Map<number, StrayBody>>();
  /** Services extensions registered (see `ExtensionHost.provide`). */
  readonly resources = new Map<symbol, unknown>();
  /** The store's awakeable secret (see `loadAwakeableSecret`), read at start. */
  awakeableSecret: Buffer | undefined;
  started = false;
  stopping = false;

  readonly own: Ownership;
  readonly admission: Admission;
  readonly host: RunnerHost;
  readonly completions: Completions;
  readonly outcomes: Outcomes;
  readonly control: Control;
  readonly results: Results;
  readonly retention: Retention;
  readonly flow: FlowControl;
  readonly queues: Queues;

  /** The engine's extensions, installed by `Engine.start` (see `EngineExtension`). */
  readonly extensions: readonly EngineExtension[];
  /** The extensions whose `install` ran (a start that failed installs the others when retried). */
  readonly installed = new Set<EngineExtension>();

  constructor(options: EngineOptions) {
    this.extensions = checkExtensions(options.extensions ?? []);
    this.registry = new Registry([
      ...options.services,
      ...this.extensions.flatMap((e) => e.services ?? []),
    ]);
    this.store = options.clock?.hold ? heldWrites(options.store, options.clock) : options.store;
    this.clock = options.clock ?? systemClock;
    this.defaultRetry = resolveRetry(options.retry);
    this.retentionMs = parseDuration(options.retention ?? '24h');
    this.suspendAfterMs = parseDuration(options.suspendAfter ?? '1s');
    this.stopGraceMs = parseDuration(options.stopGrace ?? '5s');
    this.logger = options.logger ?? defaultEngineLogger();
    this.metrics = metricsEnabled(options.metrics)
      ? new EngineMetrics(this.store, () => this.active.size)
      : undefined;
    if (this.metrics) this.store.observeCommits?.(this.metrics.commits);
    this.own = this.store.shared
      ? new ClusterOwnership(this, parseDuration(options.lease ?? '10s'))
      : new EmbeddedOwnership(this);
    this.timers = new TimerService(
      this.clock,
      this.store,
      (t) => fireTimer(this, t),
      () => this.own.processId,
    );
    this.admission = new Admission(this);
    this.host = new RunnerHost(this);
    this.completions = new Completions(this);
    this.outcomes = new Outcomes(this);
    this.control = new Control(this);
    this.results = new Results(this);
    this.retention = new Retention(this);
    this.flow = new FlowControl(this);
    this.queues = new Queues(this);
  }

  /**
   * Runs a resolved target and resolves with its result once the result is durable (the
   * ingress resolves its targets itself, so they are resolved once).
   */
  async invoke(req: Admit, wait: WaitOptions = {}): Promise<unknown> {
    const { row, existing, durable } = await this.admission.create(req, undefined);
    // A new invocation cannot have finished yet: skip the store lookup on the hot path.
    const waiting = existing
      ? this.results.await(row.id, true, wait)
      : this.results.awaitNew(row.id, wait);
    // An insert the store refused (e.g. an input above `maxPayloadBytes`) may have settled the
    // waiters before ours was registered: settle again, with the refusal, so ours is not left.
    const outcome = await Promise.race([
      waiting,
      durable.then(
        () => waiting,
        (err: unknown) => {
          this.results.settle(row.id, { error: toErrorInfo(err) });
          return waiting;
        },
      ),
    ]);
    if ('error' in outcome) throw fromErrorInfo(outcome.error);
    return outcome.output;
  }

  /**
   * Starts a resolved target; resolves once the invocation is durably accepted (a debounced
   * send: once it is part of the burst that will run). A throttled send in `drop` mode with no
   * free slot throws `ThrottledError`.
   */
  async send(req: Admit): Promise<SendResult> {
    if (req.debounce || req.throttle) return this.flow.send(req);
    const { row, existing, durable } = await this.admission.create(req, undefined);
    await durable;
    return { invocationId: row.id, status: row.status, existing };
  }

  /** Stops as a crash would: nothing in memory survives, a cluster lease simply expires. */
  async crash(): Promise<void> {
    this.stopping = true;
    this.own.crash();
    this.timers.stop();
    this.queues.stop();
    this.retention.stop();
    this.dropAll();
    this.results.clear();
    await this.store.close();
    // Not part of a crash, and not waited for (a close may wait for requests in flight): so a
    // test's crashed engine leaves no connection pool behind, at once.
    for (const e of this.installed) void e.close?.().catch(() => undefined);
  }

  /** The extensions' mounts on the ingress or the admin API, by name (see `EngineExtension.mounts`). */
  mounts(where: 'ingress' | 'admin'): Record<string, Mount> {
    const out: Record<string, Mount> = {};
    for (const e of this.extensions) {
      const m = e.mounts?.[where];
      if (m) out[e.name] = m;
    }
    return out;
  }

  /** Throws the 503 every new invocation gets once the engine is stopping. */
  checkRunning(): void {
    if (this.stopping)
      throw new KeelError('the engine is stopping', { code: 'engine_stopped', status: 503 });
  }

  log(level: keyof Logger, message: string, fields: Record<string, unknown> = {}): void {
    this.logger(level, message, fields);
  }

  /** Runs a task in the background: a failure (the store unreachable) is logged, never thrown. */
  background(what: string, task: Promise<unknown>): void {
    task.catch((err: unknown) =>
      this.log('warn', `${what} failed: ${errorMessage(err)}; it is retried later`),
    );
  }

  /** Runs `task` after a pause, again and again while it fails, until the engine stops. */
  retryLater(what: string, task: () => Promise<unknown>): void {
    this.clock.setTimer(RETRY_LATER_MS, () => {
      if (this.stopping) return;
      task().catch((err: unknown) => {
        this.log('warn', `${what} failed: ${errorMessage(err)}; trying again`);
        this.retryLater(what, task);
      });
    });
  }

  /** Drops every runner and suspend timer: the engine stops or crashes. */
  dropAll(): void {
    this.outcomes.dropSuspendTimers();
    for (const r of this.active.values()) r.kill();
    this.active.clear();
    this.strayBodies.clear();
  }
}

/** Extension names are path segments (their mounts' prefix) and unique. */
function checkExtensions(extensions: readonly EngineExtension[]): readonly EngineExtension[] {
  const names = new Set<string>();
  for (const e of extensions) {
    if (typeof e?.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(e.name))
      throw new UsageError(
        `an extension's name must be lowercase letters, digits and dashes, starting with a letter (it is its URL prefix); got ${JSON.stringify(e?.name)}`,
      );
    if (names.has(e.name))
      throw new UsageError(`two extensions are named "${e.name}": give each engine one of each`);
    if (typeof e.install !== 'function')
      throw new UsageError(`extension "${e.name}" has no install(host) function`);
    names.add(e.name);
  }
  return [...extensions];
}

const kernels = new WeakMap<Engine, Kernel>();

/** Called once by the `Engine` constructor. */
export function bindKernel(engine: Engine, kernel: Kernel): void {
  kernels.set(engine, kernel);
}

/**
 * The inside of an engine, for Keel's own layers (the ingress, the admin API, extensions'
 * installation, `keel/testing`) and tests: not exported from the package.
 */
export function kernelOf(engine: Engine): Kernel {
  const k = kernels.get(engine);
  if (!k) throw new UsageError('not an Engine');
  return k;
}

/** The store could not be reached (an outage, a lost connection): worth retrying, says nothing else. */
export function isUnavailable(err: unknown): boolean {
  return err instanceof StoreError && err.code === 'store_unavailable';
}

/** An `invocation.expect` did not hold: the invocation changed meanwhile. */
export function isPreconditionFailed(err: unknown): boolean {
  return err instanceof StoreError && err.code === 'precondition_failed';
}

/** The recorded entries of an invocation that has none yet (shared: runners only read it). */
export const NO_ENTRIES: ReadonlyMap<number, JournalEntry> = new Map();

/** An outcome in the shape of a journal entry's result fields. */
export function entryResult(outcome: Outcome): Pick<JournalEntry, 'value' | 'error'> {
  return 'error' in outcome ? { error: outcome.error } : { value: outcome.output };
}

/** The error a paused invocation records when its journal cannot be read or replayed. */
export function unreplayable(id: string, cause: unknown): KeelError {
  return new KeelError(
    `the journal of invocation ${id} cannot be replayed: ${errorMessage(cause)}. ` +
      'Repair the journal (or the code) and resume the invocation, or kill it.',
    { code: 'journal_unreadable', status: 500, cause },
  );
}

/**
 * The store, with every write reported to the clock's `hold` (a fake clock: see
 * {@link Clock.hold}). Only when the clock asks for it: the real clock costs nothing.
 */
function heldWrites(store: Store, clock: Clock): Store {
  const write = store.write.bind(store);
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'write')
        return (ops: Parameters<Store['write']>[0]) => {
          const p = write(ops);
          clock.hold!(p);
          return p;
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}
