/**
 * Integration mocks for tests: `t.mock(integration, { operation: answer })` answers an
 * integration's requests in place of its API, per test, and records every request.
 *
 * The mock sits where the product's mock mode does (`src/integrations/declarations/mock.ts`):
 * it replaces the HTTP exchange only. Everything above it is the real code: the request built
 * from the parameters, the idempotency key, the retry policy with its backoff and `Retry-After`,
 * the circuit breaker and the rate limiter (their state in the test app's SQLite store), the
 * cache, the fallback and the journaled step. Waits run on the test app's fake clock: the test
 * app installs the integrations runtime with `maxInlineWait: 0`, so every retry wait is a
 * durable backoff of the invocation, which `t.advance` and `t.runUntilIdle({ skipTime: true })`
 * move through.
 */
import { UsageError } from '../core/errors.js';
import type { Clock } from '../engine/clock.js';
import type { Integration } from '../integrations/declarations/config.js';
import type { MockRequest, MockResponse } from '../integrations/declarations/mock.js';
import { formDecode } from '../integrations/connectors/mock-kit.js';
import type { IntegrationRuntime } from '../integrations/runtime/runtime.js';
import { AttemptTimeoutError } from '../integrations/runtime/transport.js';
import {
  mockFail,
  mockNetworkError,
  mockReply,
  mockTimeout,
  Script,
  type Responder,
} from './answers.js';
import { TestAppError } from './errors.js';

/** One request an integration mock received (retries are requests of their own). */
export interface MockCall {
  integration: string;
  operation: string;
  method: string;
  /** The expanded path, without the base URL (`/users/octocat`). */
  path: string;
  query: Record<string, string>;
  /** Lower-case names; the idempotency key is among them when the operation sends one. */
  headers: Record<string, string>;
  /**
   * The body as sent: parsed JSON, a form-encoded body decoded into an object
   * (`metadata[order]=1` → `{ metadata: { order: '1' } }`, values as strings), other text as
   * it is; `undefined` without one.
   */
  body: any;
  /** When it was made, on the fake clock (epoch ms). */
  at: number;
  /** 1 for the first request to this operation, 2 for the next (a retry, or another call). */
  n: number;
  /**
   * What it got: a `status`; or `timeout` / `networkError` for a simulated failure without a
   * response. Unset while a function answering it runs.
   */
  status?: number;
  timeout?: true;
  networkError?: string;
}

/** The operation names of an integration (`string` when they are not known statically). */
export type OperationsOf<I> = I extends Integration<infer Ops> ? Ops : string;

/** What answers each operation of an integration (see `Responder`). */
export type MockResponders<I> = { [K in OperationsOf<I>]?: Responder<MockCall> };

/**
 * The test's handle on one mocked integration: its recorded requests, and its answers to change.
 *
 * @example
 * ```ts
 * const payments = t.mock(stripe, { create_charge: { id: 'ch_1', status: 'succeeded' } });
 * await t.service(Checkout).pay({ order: 'o1', amount: 2000 });
 * expect(payments.calls('create_charge')).toHaveLength(1);
 * expect(payments.calls('create_charge')[0]!.body).toMatchObject({ amount: '2000' });
 * ```
 */
export class IntegrationMock<I extends Integration = Integration> {
  /** Use `t.mock(...)`. */
  constructor(private readonly state: MockState) {}

  /** The integration's name. */
  get name(): string {
    return this.state.original.name;
  }

  /** The requests received so far, oldest first: all of them, or those of one operation. */
  calls(operation?: OperationsOf<I>): MockCall[] {
    const all = this.state.calls;
    return operation === undefined ? [...all] : all.filter((c) => c.operation === operation);
  }

  /**
   * Replaces the answers of operations (the others keep theirs); a sequence starts again from
   * its first entry.
   *
   * @example
   * ```ts
   * payments.answer({ create_charge: mockFail(503, { times: 2 }) });
   * ```
   */
  answer(responders: MockResponders<I>): this {
    for (const [op, r] of Object.entries(responders)) {
      if (r === undefined) continue;
      if (this.state.original.operations[op] === undefined)
        throw new TestAppError(
          `${this.name} has no operation ${op}; it has ${Object.keys(this.state.original.operations).join(', ') || 'none'}`,
          'not_mockable',
        );
      this.state.scripts.set(op, new Script(r));
    }
    return this;
  }

  /** Forgets the recorded requests (the answers stay). */
  clear(): void {
    this.state.calls.length = 0;
  }

  /**
   * Removes the test's answers: requests get the integration's own mock again, or, without
   * one, fail as not mocked.
   */
  restore(): void {
    this.state.scripts.clear();
  }
}

interface MockState {
  original: Integration;
  scripts: Map<string, Script<MockCall>>;
  calls: MockCall[];
  mocked: boolean;
}

/**
 * The scripted answers: `t.mock.reply(...)`, `t.mock.fail(...)`, `t.mock.timeout()`,
 * `t.mock.networkError()` (the same as `mockReply`, `mockFail`, ... from `keel/testing`).
 */
export const answers = {
  reply: mockReply,
  fail: mockFail,
  timeout: mockTimeout,
  networkError: mockNetworkError,
} as const;

/** `t.mock`: mocks an integration (see {@link IntegrationMocks.mock}), with the answer helpers on it. */
export type MockFunction = (<I extends Integration>(
  integration: I,
  responders?: MockResponders<I>,
) => IntegrationMock<I>) &
  typeof answers;

/**
 * The integration mocks of one test app: it wraps every integration the test app installs, so
 * that its requests go through {@link route}.
 */
export class IntegrationMocks {
  private readonly states = new Map<string, MockState>();
  /** The runtime the test app installed (set once the engine has started). */
  runtime: IntegrationRuntime | undefined;

  constructor(private readonly clock: Clock) {}

  /**
   * The integration as the test app installs it: the same declaration (same name, same config,
   * so `use(ctx, integration)` finds it), answered in process by {@link route}, never the network.
   */
  wrap = (integration: Integration): Integration => {
    if (!this.states.has(integration.name))
      this.states.set(integration.name, {
        original: integration,
        scripts: new Map(),
        calls: [],
        mocked: false,
      });
    return Object.freeze({
      ...integration,
      mock: (req: MockRequest) => this.route(req),
      mockMode: true,
    });
  };

  /**
   * Answers `integration`'s operations with `responders` (others: its own mock, if it has one).
   * Calling it again for the same integration returns the same handle, with the answers given
   * added. An integration the test app did not install yet is installed now, if no handler has
   * used it before.
   */
  mock<I extends Integration>(
    integration: I,
    responders: MockResponders<I> = {},
  ): IntegrationMock<I> {
    const runtime = this.runtime;
    if (runtime === undefined)
      throw new TestAppError(
        `t.mock(${integration.name}): the test app has no integrations: start it with ` +
          `testApp({ integrations: [${integration.name}], ... })`,
        'not_configured',
      );
    let state = this.states.get(integration.name);
    if (state === undefined) {
      const known = runtime.list().some((h) => h.integration.name === integration.name);
      if (known)
        throw new TestAppError(
          `t.mock(${integration.name}): it was installed before the test app could wrap it; ` +
            `list it in testApp({ integrations: [...] })`,
          'not_mockable',
        );
      runtime.register(this.wrap(integration));
      state = this.states.get(integration.name)!;
    } else if (
      state.original !== integration &&
      state.original.config !== integration.config &&
      JSON.stringify(state.original.config) !== JSON.stringify(integration.config)
    ) {
      throw new TestAppError(
        `t.mock(${integration.name}): another integration of that name is installed`,
        'not_mockable',
      );
    }
    state.mocked = true;
    return new IntegrationMock<I>(state).answer(responders);
  }

  /** The function the test app exposes as `t.mock`. */
  fn(): MockFunction {
    return Object.assign(
      <I extends Integration>(integration: I, responders?: MockResponders<I>) =>
        this.mock(integration, responders),
      answers,
    );
  }

  /** Answers one request of a wrapped integration. */
  private async route(req: MockRequest): Promise<MockResponse> {
    const state = this.states.get(req.integration);
    if (state === undefined) throw new UsageError(`${req.integration} is not mocked`);
    const n = state.calls.filter((c) => c.operation === req.operation).length + 1;
    const call: MockCall = {
      integration: req.integration,
      operation: req.operation,
      method: req.method,
      path: req.path,
      query: req.query,
      headers: req.headers,
      body: decodeBody(req),
      at: this.clock.now(),
      n,
    };
    state.calls.push(call);
    const answer = await state.scripts.get(req.operation)?.next(call);
    if (answer === undefined) {
      const own = state.original.mock;
      if (own === undefined) {
        // A UsageError fails the call at once (`invalid-request`), never retried.
        call.networkError = 'not_mocked';
        throw new UsageError(
          `${req.integration}.${req.operation} is not mocked in this test and the integration ` +
            `has no mock of its own: t.mock(${req.integration}, { ${req.operation}: ... })`,
        );
      }
      const res = await own(req);
      call.status = res?.status ?? 200;
      return res;
    }
    switch (answer.kind) {
      case 'timeout':
        call.timeout = true;
        throw new AttemptTimeoutError(
          `simulated timeout (mockTimeout) of ${req.integration}.${req.operation}`,
        );
      case 'network':
        call.networkError = answer.code;
        throw Object.assign(
          new Error(
            `simulated network error ${answer.code} (mockNetworkError) of ${req.integration}.${req.operation}`,
          ),
          { code: answer.code },
        );
      case 'reply': {
        call.status = answer.status;
        const headers = { ...answer.headers };
        if (answer.body !== undefined && !hasHeader(headers, 'content-type'))
          headers['content-type'] = 'application/json';
        return { status: answer.status, headers, body: answer.body };
      }
    }
  }
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((k) => k.toLowerCase() === name);
}

function decodeBody(req: MockRequest): unknown {
  const type = req.headers['content-type'] ?? '';
  if (
    typeof req.body === 'string' &&
    type.toLowerCase().startsWith('application/x-www-form-urlencoded')
  )
    return formDecode(req.body);
  return req.body;
}
