import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  ConflictError,
  Engine,
  InvalidDelayError,
  KeelError,
  NonDeterminismError,
  NotFoundError,
  RetriesExhaustedError,
  service,
  TerminalError,
  TimeoutError,
  UsageError,
  ValidationError,
  type KeelErrorCode,
  type Store,
} from '../src/index.js';
import { fromErrorInfo, toErrorInfo } from '../src/core/errors.js';
import { OAuth2Error } from '../src/integrations/declarations/auth/oauth2.js';
import { IntegrationCallError, MissingSecretError } from '../src/integrations/errors.js';
import { StoreError } from '../src/store/errors.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { FakeClock } from '../src/testing/index.js';
import { WebhookVerificationError } from '../src/webhooks/errors.js';
import { gate, harness, tempDir, until, type Harness } from './helpers.js';

/**
 * Errors keep their class across the journal: a failure recorded as `{ code, message, status,
 * fields }` comes back as the class registered for its code, on first execution and on replay
 * alike, and on the far side of a call, an `invoke` or an `attach`.
 */

let h: Harness | undefined;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const c of cleanups.splice(0)) await c();
});

/** What a handler saw of an error, in JSON form (it is also the handler's result). */
function shape(err: unknown): Record<string, unknown> {
  const e = err as KeelError & Record<string, unknown>;
  return {
    name: e.name,
    isKeel: err instanceof KeelError,
    isTerminalError: err instanceof TerminalError,
    isRetriesExhausted: err instanceof RetriesExhaustedError,
    isValidation: err instanceof ValidationError,
    isNotFound: err instanceof NotFoundError,
    code: e.code,
    status: e.status,
    message: e.message,
    attempts: e.attempts ?? null,
    declineCode: e.declineCode ?? null,
  };
}

class CardDeclined extends TerminalError {
  constructor(readonly declineCode: string) {
    super(`the card was declined: ${declineCode}`, { code: 'card_declined', status: 402 });
  }
}

describe('a step that ran out of retries', () => {
  it('is a RetriesExhaustedError in the handler on first execution and after a restart', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const release = gate();
    let hold = true;
    let holding = false;
    const S = service({
      name: 'S',
      handlers: {
        go: async (ctx) => {
          let caught: unknown;
          try {
            await ctx.run(
              'flaky',
              () => {
                throw new Error('the bank is down');
              },
              { retry: { maxAttempts: 1 } },
            );
          } catch (err) {
            caught = err;
          }
          seen.push(shape(caught));
          await ctx.run('hold', async () => {
            holding = true;
            if (hold) await release.promise;
          });
          return shape(caught);
        },
      },
    });
    h = await harness({ services: [S] });
    const { invocationId } = await h.engine.send({ service: 'S', handler: 'go' });
    await until(() => holding, 'the handler caught the error and holds');
    hold = false;
    // The restart replays the failed step from the SQLite journal.
    const engine = await h.restart();
    const output = await engine.attach(invocationId);

    const expected = {
      name: 'RetriesExhaustedError',
      isKeel: true,
      isTerminalError: true,
      isRetriesExhausted: true,
      code: 'retries_exhausted',
      status: 500,
      attempts: 1,
      message: expect.stringContaining('the bank is down'),
    };
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject(expected); // first execution
    expect(seen[1]).toMatchObject(expected); // replay after the restart
    expect(seen[1]).toEqual(seen[0]);
    expect(output).toMatchObject(expected);
  });
});

describe('a call to another service that failed', () => {
  const Callee = service({
    name: 'Callee',
    handlers: {
      check: async (_ctx, kind: string) => {
        if (kind === 'invalid') throw new ValidationError('sku "x-1" is malformed');
        if (kind === 'missing')
          throw new TerminalError('no sku "y-2"', { code: 'not_found', status: 404 });
        throw new CardDeclined('do_not_honor');
      },
    },
  });

  it('reaches the caller with its class, code, status and fields, live and on replay', async () => {
    const seen: Array<Array<Record<string, unknown>>> = [];
    const release = gate();
    let hold = true;
    let holding = false;
    const Caller = service({
      name: 'Caller',
      handlers: {
        go: async (ctx) => {
          const got: Array<Record<string, unknown>> = [];
          for (const kind of ['invalid', 'missing', 'declined']) {
            try {
              await ctx.serviceClient(Callee).check(kind);
            } catch (err) {
              got.push(shape(err));
            }
          }
          seen.push(got);
          await ctx.run('hold', async () => {
            holding = true;
            if (hold) await release.promise;
          });
          return got;
        },
      },
    });
    h = await harness({ services: [Callee, Caller] });
    const { invocationId } = await h.engine.send({ service: 'Caller', handler: 'go' });
    await until(() => holding, 'the caller saw every failure and holds');
    hold = false;
    const engine = await h.restart();
    const output = await engine.attach(invocationId);

    const expected = [
      {
        name: 'ValidationError',
        isValidation: true,
        isTerminalError: true,
        code: 'validation_failed',
        status: 400,
        message: 'sku "x-1" is malformed',
      },
      {
        name: 'NotFoundError',
        isNotFound: true,
        code: 'not_found',
        status: 404,
        message: 'no sku "y-2"',
      },
      {
        // A code no Keel class owns stays a TerminalError, with its code, status and fields.
        name: 'TerminalError',
        isTerminalError: true,
        isValidation: false,
        isNotFound: false,
        code: 'card_declined',
        status: 402,
        declineCode: 'do_not_honor',
      },
    ];
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject(expected); // first execution
    expect(seen[1]).toEqual(seen[0]); // replay after the restart
    expect(output).toEqual(seen[0]);
  });

  it('is final when the caller lets it through: a recorded NotFoundError is not retried', async () => {
    const Caller = service({
      name: 'Caller',
      handlers: { go: async (ctx) => ctx.serviceClient(Callee).check('missing') },
    });
    h = await harness({ services: [Callee, Caller] });
    const { invocationId } = await h.engine.send({ service: 'Caller', handler: 'go' });
    // A retry would wait for its backoff timer on the fake clock: the invocation would sit in
    // `backing-off` instead of failing.
    await until(async () => {
      const s = (await h!.engine.getInvocation(invocationId))?.status;
      return s === 'failed' || s === 'backing-off';
    }, 'the caller settled');
    expect((await h.engine.getInvocation(invocationId))?.status).toBe('failed');
    const err = await h.engine.attach(invocationId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: 'not_found', status: 404, message: 'no sku "y-2"' });
  });
});

describe('the caller of invoke and attach', () => {
  it('gets the class of the failure, live and from the store after a restart', async () => {
    const S = service({
      name: 'S',
      retry: { maxAttempts: 1 },
      handlers: {
        invalid: async () => {
          throw new ValidationError('amount must be positive');
        },
        flaky: async () => {
          throw new Error('upstream timed out');
        },
        sold: async () => {
          throw new TerminalError('sold out', { code: 'already_completed', status: 409 });
        },
      },
    });
    h = await harness({ services: [S] });

    const live = {
      invalid: await h.engine.invoke({ service: 'S', handler: 'invalid' }).catch((e) => e),
      flaky: await h.engine.invoke({ service: 'S', handler: 'flaky' }).catch((e) => e),
      sold: await h.engine.invoke({ service: 'S', handler: 'sold' }).catch((e) => e),
    };
    expect(live.invalid).toBeInstanceOf(ValidationError);
    expect(live.invalid).toMatchObject({ code: 'validation_failed', status: 400 });
    expect(live.flaky).toBeInstanceOf(RetriesExhaustedError);
    expect(live.flaky).toMatchObject({ code: 'retries_exhausted', attempts: 1 });
    expect(live.sold).toBeInstanceOf(ConflictError);
    expect(live.sold).toMatchObject({ code: 'already_completed', status: 409 });

    const ids = {
      invalid: (await h.engine.send({ service: 'S', handler: 'invalid' })).invocationId,
      flaky: (await h.engine.send({ service: 'S', handler: 'flaky' })).invocationId,
    };
    for (const id of Object.values(ids)) {
      await until(
        async () => (await h!.engine.getInvocation(id))?.status === 'failed',
        'the invocation failed',
      );
    }
    const engine = await h.restart();
    const attached = {
      invalid: await engine.attach(ids.invalid).catch((e) => e),
      flaky: await engine.attach(ids.flaky).catch((e) => e),
    };
    expect(attached.invalid).toBeInstanceOf(ValidationError);
    expect(attached.invalid).toMatchObject({ code: 'validation_failed', status: 400 });
    expect(attached.flaky).toBeInstanceOf(RetriesExhaustedError);
    expect(attached.flaky).toMatchObject({
      code: 'retries_exhausted',
      attempts: 1,
      message: expect.stringContaining('upstream timed out'),
    });
  });
});

describe('the registry of error classes', () => {
  it('rebuilds every class a user can catch from its stored shape', () => {
    const failure = {
      integration: 'Stripe',
      operation: 'create_charge',
      reason: 'rejected' as const,
      message: 'HTTP 402',
      status: 402,
      attempts: 1,
    };
    const errors: KeelError[] = [
      new TerminalError('no', { code: 'terminal' }),
      new RetriesExhaustedError('step "x"', 3, new Error('down')),
      new NonDeterminismError(4, 'run "a"', 'run "b"'),
      new ValidationError('bad'),
      new NotFoundError('gone'),
      new ConflictError('twice', 'promise_already_completed'),
      new CancelledError(),
      new TimeoutError('timed out after 5s'),
      new InvalidDelayError('negative'),
      new UsageError('misuse'),
      new IntegrationCallError(failure),
      new MissingSecretError('GitHub', 'auth.token', 'GITHUB_TOKEN', false),
      new WebhookVerificationError('stripe', 'signature mismatch'),
      new StoreError('store_unavailable', 'the database is unreachable'),
      new OAuth2Error('the token endpoint refused', 'invalid_client', 401),
    ];
    for (const original of errors) {
      // Through JSON, as the journal stores it.
      const stored = JSON.parse(JSON.stringify(toErrorInfo(original))) as ReturnType<
        typeof toErrorInfo
      >;
      const rebuilt = fromErrorInfo(stored);
      expect(rebuilt.constructor, original.name).toBe(original.constructor);
      expect(rebuilt.name).toBe(original.name);
      expect({ ...rebuilt }).toEqual({ ...original });
      expect(rebuilt.message).toBe(original.message);
      expect(toErrorInfo(rebuilt)).toEqual(stored);
    }
    const call = fromErrorInfo(toErrorInfo(errors[10]));
    expect(call).toBeInstanceOf(IntegrationCallError);
    expect((call as IntegrationCallError).httpStatus).toBe(402);
    expect((fromErrorInfo(toErrorInfo(errors[2])) as NonDeterminismError).entryIndex).toBe(4);
  });

  it('keeps an unknown code as a TerminalError with its code, status and fields', () => {
    const rebuilt = fromErrorInfo({
      code: 'insufficient_funds',
      message: 'balance 3 < 5',
      status: 409,
      // As JSON.parse reads it from the journal: `__proto__` is an own key there.
      fields: JSON.parse('{"balance":3,"__proto__":{"polluted":true}}') as Record<string, unknown>,
    });
    expect(rebuilt.constructor).toBe(TerminalError);
    expect(rebuilt).toMatchObject({ code: 'insufficient_funds', status: 409, balance: 3 });
    expect((rebuilt as unknown as Record<string, unknown>).polluted).toBeUndefined();
    const killed = fromErrorInfo({ code: 'killed', message: 'killed', status: 500 });
    expect(killed).toBeInstanceOf(TerminalError);
    expect(killed.status).toBe(409);
    const code: KeelErrorCode = 'retries_exhausted';
    expect(fromErrorInfo({ code, message: 'x' })).toBeInstanceOf(RetriesExhaustedError);
  });
});

describe('errors the engine throws at its users', () => {
  it('are KeelErrors with a code', async () => {
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const A = service({ name: 'A', handlers: { go: async () => 1 } });
    const A2 = service({ name: 'A', handlers: { go: async () => 2 } });

    const dup = (() => {
      const store = openSqliteStore({ path: join(dir, 'dup.db') });
      cleanups.push(() => store.close());
      try {
        new Engine({ services: [A, A2], store });
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(dup).toBeInstanceOf(UsageError);
    expect(dup).toMatchObject({ code: 'usage' });

    expect(() => service({ name: 'no spaces', handlers: {} })).toThrow(UsageError);

    // A store that fails a read with something that is not an Error.
    const real = openSqliteStore({ path: join(dir, 'keel.db') });
    let failReads = false;
    const store = new Proxy(real, {
      get(target, prop) {
        if (prop === 'getInvocation' && failReads)
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the case under test
          return () => Promise.reject('disk on fire');
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Store;
    const engine = new Engine({ services: [A], store, clock: new FakeClock() });
    await engine.start();
    cleanups.push(() => engine.stop());
    failReads = true;
    const err = await engine.attach('inv_nope').catch((e: unknown) => e);
    failReads = false;
    expect(err).toBeInstanceOf(KeelError);
    expect(err).toMatchObject({ code: 'internal', message: 'disk on fire' });

    const badPolicy = (() => {
      try {
        new Engine({ services: [A], store: real, retry: { maxAttempts: 0 } });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(badPolicy).toBeInstanceOf(UsageError);
  });
});
