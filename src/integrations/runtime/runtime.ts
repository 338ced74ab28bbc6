/**
 * The integrations runtime: what runs declared integrations' calls. One per engine (installed by
 * `createIntegrations` or `startApp({ integrations })`), or standalone for plain clients. It
 * owns the HTTP connection pool, the response cache, and per integration the shared breaker and
 * limiter (state in the engine's Store), the OAuth2 token cache and the health statistics.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseDuration, type Duration } from '../../core/duration.js';
import { errorMessage, NotFoundError, UsageError } from '../../core/errors.js';
import { systemClock, type Clock } from '../../engine/clock.js';
import { resolveClientCredentials } from '../declarations/auth/authorize.js';
import {
  clientCredentialsRequest,
  OAuth2TokenCache,
  parseTokenResponse,
} from '../declarations/auth/oauth2.js';
import { Batcher } from './batcher.js';
import { AccountTokens } from '../oauth/account-tokens.js';
import { ConnectedAccounts } from '../oauth/accounts.js';
import type { BreakerEvent } from '../policies/breaker.js';
import { ResponseCache } from '../shared/cache.js';
import { attempts, runCall, type CallControl, type CallResult, type CallServices } from './call.js';
import type { Integration, ResolvedOperation } from '../declarations/config.js';
import { makeClient, toData, type IntegrationClient } from './client.js';
import type { IntegrationHandle } from './handle.js';
import { mockDecision } from '../declarations/mock.js';
import type { CallParams, IntegrationCallOptions } from './request.js';
import type { Env } from '../declarations/secrets.js';
import { SharedBreaker } from '../shared/shared-breaker.js';
import type { KvStore } from '../shared/shared-cell.js';
import { limiterOptions, SharedLimiter } from '../shared/shared-limiter.js';
import { IntegrationStats } from './stats.js';
import { HttpTransport, sendToMock } from './transport.js';
import { toIntegrationEvent, type EventSubscriber, type IntegrationEvent } from './events.js';
import { apiProbe } from '../health/api-probe.js';
import { HealthMonitor } from '../health/monitor.js';
import { ProbeRegistry } from '../health/registry.js';
import { RequestLog, type LogSink } from './request-log.js';
import { defaultEngineLogger } from '../../observability/log.js';

/** A durable call between executions: retries made, and when the next attempt is due. */
export interface CallProgress {
  retriesDone: number;
  notBefore: number;
}

/** Options of {@link IntegrationRuntime}. */
export interface IntegrationRuntimeOptions {
  /** Integrations known up front (listed by the admin API even before their first call). */
  integrations?: readonly Integration[];
  /**
   * Where breaker, rate-limit, cache and retry state is shared. An engine's store when installed
   * on an engine; without one, state lives in this process's memory only.
   */
  store?: KvStore;
  /** Default: the system clock. A fake clock moves breaker windows and retry waits. */
  clock?: Clock;
  /** Where secrets and `KEEL_MOCK` are read from. Default `process.env`. */
  env?: Env;
  /**
   * Force mock mode on (or off) for every integration that has a mock, whatever `KEEL_MOCK` says.
   * Unset (the default): `KEEL_MOCK=1` forces mocks, `KEEL_MOCK=0` real calls, and otherwise an
   * integration with a mock uses it when an environment variable it reads (its API key) is absent,
   * which is logged once per integration ("GitHubAPI: GITHUB_TOKEN not set, using the mock").
   */
  mock?: boolean;
  /**
   * How old a cached copy of the shared breaker and limiter state may be before it is read
   * again (default `1s`). Another process's transition is seen within this bound; `0` reads the
   * store on every call.
   */
  sharedStateMaxAge?: Duration;
  /**
   * A durable call (from a handler) waits up to this long in memory before a retry or for a
   * rate-limit permit; longer waits are handed to the engine, which re-runs the step when due
   * (default `2s`).
   */
  maxInlineWait?: Duration;
  /** Called (in the process that made the transition) for each circuit event. */
  onEvent?: (event: IntegrationEvent) => void | Promise<void>;
  /** Handlers Keel invokes durably with each event (needs an engine). */
  subscribers?: readonly EventSubscriber[];
  /** Starts a handler durably; set by `createIntegrations` to the engine's `send`. */
  send?: (req: {
    service: string;
    handler: string;
    key?: string;
    input: unknown;
    idempotencyKey: string;
  }) => Promise<unknown>;
  /**
   * Where events and problems are reported (never with secrets). Default: `logger`, else Keel's
   * logger (JSON lines on standard output, see docs/observability.md).
   */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /**
   * The engine's logger (set by `createIntegrations`): request/response lines go there, and so
   * do the messages above when `log` is not given. Without it, no request lines are written.
   */
  logger?: LogSink;
  /** Request/response log lines (see `request-log.ts`). Default true. */
  logRequests?: boolean;
  /**
   * Add request and response bodies to the log lines, with secret-looking fields (`password`,
   * `token`, `api_key`, ...) replaced by `***` and clipped to 1 KB. Default false.
   */
  logBodies?: boolean;
  /**
   * The probes the health monitor runs (set by `createIntegrations` to the engine's, which
   * databases and buses feed too). Default: a registry of this runtime's own.
   */
  probes?: ProbeRegistry;
  /** Health checks: failed probes in a row before an integration is unhealthy (default 1). */
  health?: { failureThreshold?: number };
}

/**
 * Runs integration calls with their policies.
 *
 * @example
 * ```ts
 * const runtime = new IntegrationRuntime({ integrations: [github] });
 * const gh = runtime.client(github);
 * const user = await gh.get_user({ username: 'octocat' });
 * await runtime.close();
 * ```
 */
export class IntegrationRuntime {
  readonly clock: Clock;
  readonly maxInlineWaitMs: number;
  private readonly handles = new Map<string, IntegrationHandle>();
  private readonly http = new HttpTransport();
  private accountsMemo: ConnectedAccounts | undefined;
  private readonly cache: ResponseCache;
  private readonly services: CallServices;
  private readonly maxAgeMs: number;
  /** Durable calls waiting for their next attempt, by call key. */
  private readonly pending = new Map<string, CallProgress>();
  /** What is health-checked: API integrations with a `healthCheckPath`, databases, brokers. */
  readonly probes: ProbeRegistry;
  /** Runs the probes (started by the engine extension, or `health.start()` by hand). */
  readonly health: HealthMonitor;
  private readonly requestLog: RequestLog | undefined;

  constructor(readonly options: IntegrationRuntimeOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.maxAgeMs = parseDuration(options.sharedStateMaxAge ?? '1s');
    this.maxInlineWaitMs = parseDuration(options.maxInlineWait ?? '2s');
    const now = (): number => this.clock.now();
    this.requestLog = requestLogOf(options);
    this.probes = options.probes ?? new ProbeRegistry();
    this.health = new HealthMonitor({
      registry: this.probes,
      clock: this.clock,
      ...(options.store === undefined ? {} : { store: options.store }),
      ...(options.health?.failureThreshold === undefined
        ? {}
        : { failureThreshold: options.health.failureThreshold }),
      publish: (event, level, line) => this.emit(event, level, line),
      redeliver: (event) => this.deliver(event),
      log: (level, message) => this.log(level, message),
    });
    this.cache = new ResponseCache(options.store, now, {}, (err) =>
      this.log('warn', `could not store a cached response: ${errorMessage(err)}`),
    );
    this.services = {
      now,
      wait: (ms) => this.wait(ms),
      random: Math.random,
      cache: this.cache,
      http: this.http,
      sendMock: (h, req, timeoutMs) => sendToMock(h.integration.mock!, req, timeoutMs),
      batch: (h, op, req, ctl) => this.batcherFor(h, op, req).add(req, ctl),
      requestLog: this.requestLog,
    };
    for (const i of options.integrations ?? []) this.register(i);
  }

  /**
   * Adds an integration; its state is created lazily. Registering the same declaration again
   * (or an identical one, e.g. a connector factory called twice) returns the existing state.
   */
  register(integration: Integration): IntegrationHandle {
    const existing = this.handles.get(integration.name);
    if (existing !== undefined) {
      if (
        existing.integration !== integration &&
        existing.integration.config !== integration.config &&
        JSON.stringify(existing.integration.config) !== JSON.stringify(integration.config)
      ) {
        throw new UsageError(
          `two different integrations are named ${integration.name}; names must be unique (they key shared state and admin URLs)`,
        );
      }
      return existing;
    }
    const h = this.createHandle(integration);
    if (integration.healthCheck !== undefined) {
      this.probes.add(
        apiProbe(h, { http: this.http, now: () => this.clock.now(), requestLog: this.requestLog }),
      );
    }
    this.handles.set(integration.name, h);
    return h;
  }

  /** The integrations this runtime knows, in registration order. */
  list(): IntegrationHandle[] {
    return [...this.handles.values()];
  }

  /** The state of a known integration, or a 404 error. */
  get(name: string): IntegrationHandle {
    const h = this.handles.get(name);
    if (h === undefined) throw new NotFoundError(`no integration named ${name}`);
    return h;
  }

  /**
   * A plain client: every operation as a method, through the same policies as a handler's calls
   * but not journaled (a crash forgets it; retries wait in memory).
   *
   * @example
   * ```ts
   * const gh = runtime.client(github);
   * const user = await gh.get_user<{ login: string }>({ username: 'octocat' });
   * const res = await gh.get_user.withResponse({ username: 'octocat' }); // { data, status, fromCache, ... }
   * ```
   */
  client<I extends Integration>(integration: I): IntegrationClient<I> {
    const h = this.register(integration);
    return makeClient(
      integration,
      (op, params, options) => this.call(h, op, params, options),
      (op, params, options) =>
        runCall(this.services, h, op, params, options, plainControl(op, options), toData),
    );
  }

  /** One plain call. */
  call(
    h: IntegrationHandle,
    op: ResolvedOperation,
    params: CallParams,
    options: IntegrationCallOptions,
  ): Promise<CallResult> {
    return runCall(this.services, h, op, params, options, plainControl(op, options));
  }

  /**
   * One execution of a durable call's step. Resumes where earlier executions left off (the
   * retries already made); throws `RetryLater` when the next attempt is due later than
   * `maxInlineWait`, so the engine re-runs the step then.
   */
  async callDurable(
    h: IntegrationHandle,
    op: ResolvedOperation,
    params: CallParams,
    options: IntegrationCallOptions,
    ctl: CallControl,
  ): Promise<CallResult> {
    return runCall(this.services, h, op, params, options, ctl);
  }

  /** Where a durable call waiting for its next attempt stands, if this process knows. */
  progress(callKey: string): CallProgress | undefined {
    return this.pending.get(callKey);
  }

  setProgress(callKey: string, progress: CallProgress | undefined): void {
    if (progress === undefined) {
      this.pending.delete(callKey);
      return;
    }
    this.pending.set(callKey, progress);
    // Entries of invocations that never came back (cancelled, finished elsewhere) are dropped
    // a day after they were due; the Store keeps the record for a week.
    if (this.pending.size > 1000) {
      const cutoff = this.clock.now() - 86_400_000;
      for (const [k, p] of this.pending) if (p.notBefore < cutoff) this.pending.delete(k);
    }
  }

  /**
   * The connected accounts of OAuth2 authorization-code integrations, kept in the store (none
   * without one).
   */
  connectedAccounts(): ConnectedAccounts | undefined {
    const store = this.options.store;
    if (store === undefined) return undefined;
    return (this.accountsMemo ??= new ConnectedAccounts({
      store,
      now: () => this.clock.now(),
      ...(this.options.env === undefined ? {} : { env: this.options.env }),
      http: (req, timeoutMs) => this.http.send(req, timeoutMs),
    }));
  }

  /** The store shared state lives in, if any. */
  get store(): KvStore | undefined {
    return this.options.store;
  }

  /** Waits on the runtime's clock (a fake clock's `advance` releases it). */
  wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    // The system clock's timers are unref'd; a plain client in a script must keep it alive.
    if (this.clock === systemClock) return sleep(ms);
    return new Promise((resolve) => this.clock.setTimer(ms, resolve));
  }

  /** Stops the connection pool. */
  /** Flushes batches and closes the connection pools; closing again returns the same promise. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.health.stop();
      for (const h of this.handles.values()) for (const b of h.batchers.values()) b.flush();
      await this.http.close();
    })());
  }

  private closing: Promise<void> | undefined;

  log(level: 'info' | 'warn' | 'error', message: string): void {
    if (this.options.log) this.options.log(level, message);
    else
      (this.options.logger ?? defaultEngineLogger())(level, message, { extension: 'integrations' });
  }

  private mockNotes: Map<string, string[]> | undefined;

  /**
   * Logs why an integration runs on its mock. Handles made together (an app declaring 100+
   * services on one missing variable) are summed up in one line per missing set, not one each.
   */
  private noteMock(name: string, missing: readonly string[]): void {
    if (this.mockNotes === undefined) {
      this.mockNotes = new Map();
      queueMicrotask(() => {
        const notes = this.mockNotes ?? new Map<string, string[]>();
        this.mockNotes = undefined;
        for (const [vars, names] of notes) {
          if (names.length <= 3) {
            for (const n of names) this.log('info', `${n}: ${vars} not set, using the mock`);
          } else {
            const shown = names.slice(0, 3).join(', ');
            this.log(
              'info',
              `${names.length} integrations (${shown}, ...): ${vars} not set, using their mocks`,
            );
          }
        }
      });
    }
    const vars = missing.join(', ');
    const names = this.mockNotes.get(vars) ?? [];
    names.push(name);
    this.mockNotes.set(vars, names);
  }

  private createHandle(integration: Integration): IntegrationHandle {
    const now = (): number => this.clock.now();
    const decision = mockDecision(integration, this.options.env ?? process.env);
    const mockOn = integration.mock !== undefined && (this.options.mock ?? decision.on);
    if (mockOn && this.options.mock === undefined && decision.reason === 'missing-env') {
      // Once per integration (a handle is made once): say why no request leaves the process.
      this.noteMock(integration.name, decision.missing);
    }
    const env = { maxAgeMs: this.maxAgeMs, now };
    const breaker =
      integration.circuitBreaker === undefined
        ? undefined
        : new SharedBreaker(this.options.store, integration.name, integration.circuitBreaker, {
            ...env,
            onEvents: (events) => this.publish(integration.name, events),
          });
    const limiter =
      integration.rateLimit === undefined
        ? undefined
        : new SharedLimiter(
            this.options.store,
            integration.name,
            limiterOptions(integration.rateLimit.requests, integration.rateLimit.windowMs),
            { ...env, wait: (ms) => this.wait(ms) },
          );
    let tokens: OAuth2TokenCache | undefined;
    const auth = integration.auth;
    if (auth.type === 'oauth2' && !mockOn) {
      tokens = new OAuth2TokenCache({
        now,
        ...(auth.refreshMargin === undefined
          ? {}
          : { marginMs: parseDuration(auth.refreshMargin) }),
        fetchToken: async () => {
          const creds = resolveClientCredentials(auth, {
            integration: integration.name,
            ...(this.options.env ? { env: this.options.env } : {}),
          });
          const req = clientCredentialsRequest(creds);
          const res = await this.http.send({ ...req, body: req.body }, integration.timeoutMs);
          return parseTokenResponse(res.status, res.body, now());
        },
      });
    }
    // Per-user OAuth2: tokens come from the connected accounts in the Store (none in mock mode).
    const accounts =
      auth.type === 'oauth2_authorization_code' && !mockOn
        ? new AccountTokens(integration, this.connectedAccounts(), this.options.env)
        : undefined;
    return {
      integration,
      env: this.options.env,
      mockOn,
      breaker,
      limiter,
      tokens,
      accounts,
      stats: new IntegrationStats(),
      batchers: new Map(),
    };
  }

  private batcherFor(
    h: IntegrationHandle,
    op: ResolvedOperation,
    req: { method: string; path: string; query: Record<string, string> },
  ): Batcher {
    const key = JSON.stringify([op.name, req.method, req.path, req.query]);
    let b = h.batchers.get(key);
    if (b === undefined) {
      b = new Batcher(
        op.batch!,
        op.sendIdempotencyKey ? h.integration.idempotency.header.toLowerCase() : undefined,
        (batchReq, ctl) => attempts(this.services, h, op, batchReq, ctl),
        // The system clock's timers are unref'd: a batch must not be dropped at exit, so it
        // keeps a plain timer; another clock (a fake one in tests) drives the delay.
        this.clock === systemClock ? undefined : (ms, fn) => this.clock.setTimer(ms, fn),
      );
      h.batchers.set(key, b);
    }
    return b;
  }

  private publish(integration: string, events: BreakerEvent[]): void {
    const totals = this.handles.get(integration)?.stats.totals;
    for (const e of events) {
      if (totals) totals.transitions[e.type]++;
      const event = toIntegrationEvent(integration, e);
      // A failed send was logged; circuit events are not sent again.
      this.emit(
        event,
        e.type === 'opened' ? 'warn' : 'info',
        `${event.type}: ${integration}${e.type === 'opened' ? ` (${e.reason}, ${e.failures} failure${e.failures === 1 ? '' : 's'})` : ''}`,
      ).catch(() => undefined);
    }
  }

  /**
   * Logs an event and delivers it: to `onEvent` (best effort), and to each subscriber durably
   * (`send` with an idempotency key made of the event's id, so a subscriber runs once per event).
   * Resolves once every subscriber's invocation was accepted; rejects when one could not be (a
   * circuit event ignores that; a health event is then sent again later, see `HealthMonitor`).
   */
  private emit(event: IntegrationEvent, level: 'info' | 'warn', line: string): Promise<void> {
    this.log(level, line);
    if (this.options.onEvent) {
      Promise.resolve()
        .then(() => this.options.onEvent!(event))
        .catch((err: unknown) =>
          this.log('error', `onEvent failed for ${event.type}: ${errorMessage(err)}`),
        );
    }
    return this.deliver(event);
  }

  /** Sends `event` to every subscriber durably (see {@link emit}). */
  private async deliver(event: IntegrationEvent): Promise<void> {
    const subs = this.options.subscribers ?? [];
    if (subs.length === 0) return;
    const send = this.options.send;
    if (send === undefined) {
      this.log(
        'warn',
        `event subscribers need an engine: add createIntegrations(...) to the engine's extensions`,
      );
      return;
    }
    const results = await Promise.allSettled(
      subs.map((sub) =>
        send({
          service: sub.service,
          handler: sub.handler,
          ...(sub.key === undefined ? {} : { key: sub.key }),
          input: event,
          idempotencyKey: `${event.id}>${sub.service}.${sub.handler}`,
        }).catch((err: unknown) => {
          this.log(
            'error',
            `could not deliver ${event.type} to ${sub.service}.${sub.handler}: ${errorMessage(err)}`,
          );
          throw err;
        }),
      ),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }
}

/** A plain call's control when it needs no key: the same object for every such call. */
const KEYLESS: CallControl = Object.freeze({
  idempotencyKey: '',
  retriesDone: 0,
  maxInlineWaitMs: Infinity,
});

/**
 * How a plain call runs: one random key per call (the same across its retries), made only when
 * something uses it (the idempotency header of a non-idempotent operation, or a batch's key);
 * retries wait in memory.
 */
function plainControl(op: ResolvedOperation, options: IntegrationCallOptions): CallControl {
  const needsKey =
    op.batch !== undefined || (op.sendIdempotencyKey && options.idempotencyKey === undefined);
  if (!needsKey) return KEYLESS;
  return { idempotencyKey: randomUUID(), retriesDone: 0, maxInlineWaitMs: Infinity };
}

/** The request log of a runtime: on the engine's logger (a runtime without one writes none). */
function requestLogOf(options: IntegrationRuntimeOptions): RequestLog | undefined {
  if (options.logRequests === false || options.logger === undefined) return undefined;
  return new RequestLog(options.logger, options.logBodies === true);
}
