/**
 * Calls from handlers: `use(ctx, integration)` gives a client whose every call is one journaled
 * step (`ctx.run`), named `{integration}.{operation}`. Once the step's result is journaled it is
 * never fetched again: a replay returns it, a failure included (the same `IntegrationCallError`
 * is thrown live and on replay).
 *
 * **Idempotency key.** `{invocationId}.{n}`, where n counts the integration calls of the
 * invocation in code order, which a replay repeats exactly. Every retry and every re-execution
 * after a crash sends the same key.
 *
 * **Retries.** Short waits (up to `maxInlineWait`, default 2 s: the default 100/200/400 ms
 * backoff, a short `Retry-After`) happen inside the step. A longer one (a schedule of
 * `[1m, 5m, 30m, 2h, 8h]`, a `Retry-After: 3600`) is durable: the step records where the call
 * stands (retries made, when the next attempt is due) in the Store and fails with a retryable
 * error; the engine backs the invocation off durably (it holds no memory meanwhile and survives
 * restarts) and re-runs the step when the attempt is due. The step's engine retry policy is set
 * from the recorded due time, so the wake-up is exact; after a restart the first wake-up comes
 * `maxInlineWait` later, reads the record, and then waits exactly.
 */
import type { Context } from '../../core/context.js';
import { UsageError } from '../../core/errors.js';
import { attemptOf, contextKey } from '../../engine/extension.js';
import type { RetryPolicy } from '../../core/retry.js';
import { RetryLater, type CallResult } from './call.js';
import type { Integration, ResolvedOperation } from '../declarations/config.js';
import { makeClient, type IntegrationClient } from './client.js';
import type { IntegrationHandle } from './handle.js';
import type { CallParams, IntegrationCallOptions } from './request.js';
import type { CallProgress, IntegrationRuntime } from './runtime.js';

/** Where handlers' contexts find the runtime (see `createIntegrations`). */
export const INTEGRATIONS_RUNTIME = contextKey<IntegrationRuntime>('keel.integrations');

/** The Store scope where durable calls record their progress between executions. */
export const CALLS_SCOPE = 'keel.integrations.calls';

/** Integration calls made so far by each handler attempt's context. */
const ordinals = new WeakMap<object, number>();

/**
 * A client of `integration` for use inside a handler: every call is a journaled step.
 *
 * @example
 * ```ts
 * const Profile = service({
 *   name: 'Profile',
 *   handlers: {
 *     show: async (ctx, username: string) => {
 *       const user = await use(ctx, github).get_user<{ name: string }>({ username });
 *       return user.name;
 *     },
 *   },
 * });
 * ```
 */
export function use<I extends Integration>(ctx: Context, integration: I): IntegrationClient<I> {
  const runtime = INTEGRATIONS_RUNTIME.of(ctx);
  if (runtime === undefined) {
    throw new UsageError(
      `use(ctx, ${integration.name}): no integrations runtime on this engine. Start the app with startApp({ integrations: [...] }) or add createIntegrations() to the engine's extensions; outside handlers use runtime.client(integration)`,
    );
  }
  const h = runtime.register(integration);
  return makeClient(integration, (op, params, options) =>
    durableCall(ctx, runtime, h, op, params, options),
  );
}

function durableCall(
  ctx: Context,
  runtime: IntegrationRuntime,
  h: IntegrationHandle,
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
): Promise<CallResult> {
  // Synchronous up to ctx.run, so concurrent calls take journal positions in code order.
  const n = ordinals.get(ctx) ?? 0;
  ordinals.set(ctx, n + 1);
  const callKey = `${ctx.invocationId}.${n}`;
  const known = runtime.progress(callKey);
  const due = known === undefined ? undefined : known.notBefore - runtime.clock.now();
  // The engine re-runs a failed step after this long: exactly when the next attempt is due, if
  // this process knows it; otherwise soon, to read the recorded progress.
  const interval = due !== undefined && due > 0 ? due : runtime.maxInlineWaitMs;
  const retry: RetryPolicy = {
    maxAttempts: Infinity,
    initialInterval: interval,
    maxInterval: interval,
    factor: 1,
    jitter: 0,
  };
  return ctx.run(
    `${h.integration.name}.${op.name}`,
    () => execute(ctx, runtime, h, op, params, options, callKey),
    { retry },
  );
}

async function execute(
  ctx: Context,
  runtime: IntegrationRuntime,
  h: IntegrationHandle,
  op: ResolvedOperation,
  params: CallParams,
  options: IntegrationCallOptions,
  callKey: string,
): Promise<CallResult> {
  const store = runtime.store;
  let progress = runtime.progress(callKey);
  let recorded = false;
  // Only an invocation that has failed before can have recorded progress: the first execution
  // of every call skips the read.
  if (progress === undefined && store !== undefined && engineAttempt(ctx) > 0) {
    const row = await store.getKv(CALLS_SCOPE, callKey);
    if (row !== undefined) {
      progress = row.value as CallProgress;
      recorded = true;
    }
  }
  try {
    if (progress !== undefined) {
      const wait = progress.notBefore - runtime.clock.now();
      if (wait > runtime.maxInlineWaitMs) {
        throw new RetryLater(
          progress.retriesDone,
          progress.notBefore,
          undefined,
          `${h.integration.name}.${op.name}: next attempt in ${wait} ms`,
        );
      }
      await runtime.wait(wait);
      recorded ||= store !== undefined;
    }
    const result = await runtime.callDurable(h, op, params, options, {
      idempotencyKey: callKey,
      retriesDone: progress?.retriesDone ?? 0,
      maxInlineWaitMs: runtime.maxInlineWaitMs,
    });
    runtime.setProgress(callKey, undefined);
    if (recorded) {
      store!.write([{ op: 'kv.delete', scope: CALLS_SCOPE, key: callKey }]).catch(() => undefined);
    }
    return result;
  } catch (err) {
    const later =
      err instanceof RetryLater
        ? err
        : // Not the API's failure (the store is down, a bug): try again soon, without spending
          // one of the call's retries, rather than let the engine re-run the step at once.
          new RetryLater(
            progress?.retriesDone ?? 0,
            runtime.clock.now() + Math.max(1000, runtime.maxInlineWaitMs),
            undefined,
            `${h.integration.name}.${op.name}: ${err instanceof Error ? err.message : String(err)}`,
          );
    const next: CallProgress = { retriesDone: later.retriesDone, notBefore: later.notBefore };
    runtime.setProgress(callKey, next);
    const unchanged =
      progress !== undefined &&
      progress.retriesDone === next.retriesDone &&
      progress.notBefore === next.notBefore;
    if (store !== undefined && !unchanged) {
      await store.write([
        {
          op: 'kv.put',
          scope: CALLS_SCOPE,
          key: callKey,
          value: next,
          // Kept a week past its due time, then purged: by then the invocation has moved on.
          expiresAt: later.notBefore + 7 * 86_400_000,
        },
      ]);
    }
    throw later;
  }
}

/** Failed attempts of the invocation so far (1 when unknown, so progress is looked up). */
function engineAttempt(ctx: Context): number {
  return attemptOf(ctx) ?? 1;
}
