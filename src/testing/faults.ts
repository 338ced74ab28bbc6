import type { Definition } from '../core/definitions.js';
import { parseDuration, type Duration } from '../core/duration.js';
import type { JournalEntry } from '../core/journal.js';
import type { Kernel } from '../engine/kernel.js';
import type { Runner } from '../engine/runner.js';
import { StoreError } from '../store/errors.js';
import type { OpResult, WriteOp } from '../store/types.js';
import { instrumentsOf, type Instruments } from './instrument.js';
import type { WatchedStore } from './watched-store.js';

/** What an injected failure throws: an error, or one made per failure (`n` counts from 1). */
export type InjectedError = Error | ((n: number) => Error);

/** Options of {@link Faults.failStep} and {@link Faults.failHandler}. */
export interface FailOptions {
  /** How many runs fail before the real code runs again. Default 1; `Infinity` fails every run. */
  times?: number;
  /**
   * What is thrown. Default: a plain `Error` (retryable: the engine retries with the step's or
   * handler's retry policy). A `TerminalError` is not retried: a saga compensates.
   */
  error?: InjectedError;
  /** Only in this handler of the definition (`failStep`), e.g. `'run'`. Default: any. */
  handler?: string;
}

/** Options of {@link Faults.delayHandler}. */
export interface DelayOptions {
  /** How many invocations of the handler are delayed. Default 1; `Infinity`: all of them. */
  times?: number;
}

/** Options of {@link Faults.failNextCommit}. */
export interface CommitFaultOptions {
  /** Only a write that records a journal entry of this invocation. Default: any invocation. */
  invocation?: string;
  /**
   * Only a write that records a journal entry of this name: a step's name (`ctx.run('charge')`),
   * a call's target (`Payments/cust-1/charge`). Default: any entry.
   */
  entry?: string;
  /**
   * Which writes count, instead of the default: any write that records a journal entry (a step,
   * a call, a sleep, a state change, a completion). Combined with `invocation` and `entry`.
   */
  match?: (ops: readonly WriteOp[]) => boolean;
  /**
   * The write is applied, then reported as failed (the connection broke after the database
   * committed): the engine must cope with a write it believes failed. Default false: nothing of
   * the write is applied, as when a transaction rolls back.
   */
  applied?: boolean;
  /**
   * What the write rejects with. Default: a `StoreError` with code `store_unavailable` (what a
   * lost connection or a failed disk write is reported as, and what the engine retries).
   */
  error?: Error;
}

/** One injected fault: how often it fired, and a way to remove it early. */
export interface Fault {
  /** How many times it has fired so far. */
  readonly fired: number;
  /** How many more times it will fire (`Infinity` for an unlimited one, 0 once spent or removed). */
  readonly remaining: number;
  /** Removes it: it fires no more. */
  remove(): void;
}

class Budget implements Fault {
  fired = 0;
  constructor(public remaining: number) {}
  take(): boolean {
    if (this.remaining <= 0) return false;
    this.remaining--;
    this.fired++;
    return true;
  }
  remove(): void {
    this.remaining = 0;
  }
}

/**
 * Failure injection for a {@link TestApp} (`t.faults`): makes a step or a handler fail a given
 * number of times, delays a handler so that a caller's timeout fires on the fake clock, or
 * makes the store fail a write, to test retries and compensations without touching the code
 * under test. A fault applies to what runs after it is added; `clear()` removes them all.
 *
 * @example
 * ```ts
 * t.faults.failStep(Signup, 'send welcome email', { times: 2 });
 * const id = await t.workflowSend(Signup, 'ada').run({ email: 'ada@example.com' });
 * await t.runUntilIdle({ skipTime: true }); // skips the retries' backoffs
 * const step = (await t.journal(id)).find((e) => e.name === 'send welcome email');
 * expect(step).toMatchObject({ done: true, attempts: 3 });
 * ```
 */
export class Faults {
  private readonly ins: Instruments;
  private readonly all: Budget[] = [];

  /** @internal A test app makes its own: use `t.faults`. */
  constructor(
    kernel: Kernel,
    private readonly store: WatchedStore,
  ) {
    this.ins = instrumentsOf(kernel);
  }

  /**
   * The next `times` runs of a `ctx.run` step named `step` in a handler of `def` throw `error`
   * instead of running the body (the body does not run: the failure comes first, as a refused
   * request would). Replayed steps are not runs: a step whose result is in the journal never
   * fails. With the default retryable error the step is retried by the engine and the entry
   * records its `attempts`; with a `TerminalError` it fails for good.
   *
   * @example
   * ```ts
   * // The charge fails for good: the saga compensates what it did before.
   * t.faults.failStep(Checkout, 'charge card', {
   *   error: new TerminalError('card declined', { code: 'declined' }),
   * });
   * ```
   */
  failStep(def: Definition | string, step: string, options: FailOptions = {}): Fault {
    const service = nameOf(def);
    const budget = this.add(options.times ?? 1);
    this.ins.stepWrappers.push((runner, _index, name, body) => {
      if (runner.row.service !== service || name !== step) return body();
      if (options.handler !== undefined && runner.row.handler !== options.handler) return body();
      if (!budget.take()) return body();
      return Promise.reject(
        errorOf(
          options.error,
          budget.fired,
          `step "${step}" of ${service} failed (t.faults.failStep, failure ${budget.fired})`,
        ),
      );
    });
    return budget;
  }

  /**
   * The next `times` invocations of `def`'s `handler` fail as soon as their attempt starts,
   * with `error`, before the handler's code runs. With the default retryable error each fails
   * one attempt and is retried (so `times: 2` fails the first two attempts of one invocation);
   * with a `TerminalError` the invocation fails, and so does the call of a caller waiting on it.
   * Counted per attempt; an attempt that replays a journal (it started before) never fails.
   *
   * @example
   * ```ts
   * t.faults.failHandler(Inventory, 'reserve', {
   *   error: new TerminalError('out of stock', { code: 'out_of_stock' }),
   * });
   * ```
   */
  failHandler(def: Definition | string, handler: string, options: FailOptions = {}): Fault {
    const service = nameOf(def);
    const budget = this.add(options.times ?? 1);
    this.ins.handlerWrappers.push((runner, fn) => {
      if (!matches(runner, service, handler) || runner.recorded.size > 0) return fn;
      if (!budget.take()) return fn;
      const error = errorOf(
        options.error,
        budget.fired,
        `${service}.${handler} failed (t.faults.failHandler, failure ${budget.fired})`,
      );
      return () => Promise.reject(error);
    });
    return budget;
  }

  /**
   * The next `times` invocations of `def`'s `handler` start with a durable sleep of `delay`
   * before the handler's code: on the fake clock, a caller's timeout shorter than that
   * (`orTimeout`, a saga step's `timeout`, a `ctx.race` against `ctx.sleep`) fires first, as
   * with a slow or hanging service. The sleep is the first entry of the delayed invocation's
   * journal; `advance` past it and the handler runs after all.
   *
   * @example
   * ```ts
   * t.faults.delayHandler(Payments, 'charge', '10m'); // the saga's step times out after 5m
   * const id = await t.workflowSend(Checkout, 'o1').run(order);
   * await t.advance('5m');
   * expect(await t.output(id)).toMatchObject({ ready: true });
   * ```
   */
  delayHandler(
    def: Definition | string,
    handler: string,
    delay: Duration,
    options: DelayOptions = {},
  ): Fault {
    const service = nameOf(def);
    const ms = parseDuration(delay);
    const budget = this.add(options.times ?? 1);
    // Decided at an invocation's first attempt; every later attempt replays the same sleep.
    const delayed = new Set<string>();
    this.ins.handlerWrappers.push((runner, fn) => {
      if (!matches(runner, service, handler)) return fn;
      if (!delayed.has(runner.row.id)) {
        if (runner.recorded.size > 0 || !budget.take()) return fn;
        delayed.add(runner.row.id);
      }
      return async (ctx: { sleep(ms: number): PromiseLike<void> }, input: unknown) => {
        await ctx.sleep(ms);
        return fn(ctx, input);
      };
    });
    return budget;
  }

  /**
   * The next store write that records a journal entry (or the next one matching `options`)
   * fails once, as a lost connection or a failed disk write would: by default nothing of it is
   * applied and it rejects with a `StoreError` (`store_unavailable`). The engine must retry the
   * attempt from its journal, and nothing may be half-written or done twice.
   *
   * @example
   * ```ts
   * // Before the send: an embedded engine may run the first steps before the send resolves.
   * const lost = t.faults.failNextCommit({ entry: 'charge' });
   * const id = await t.serviceSend(Billing).invoice(order);
   * await t.runUntilIdle({ skipTime: true }); // the attempt's retry backoff
   * expect(lost.fired).toBe(1);
   * expect(await t.output(id)).toMatchObject({ ready: true, outcome: { output: 'sent' } });
   * ```
   */
  failNextCommit(options: CommitFaultOptions = {}): Fault {
    const budget = this.add(1);
    const interceptor = (
      ops: WriteOp[],
      forward: (ops: WriteOp[]) => Promise<OpResult[]>,
    ): Promise<OpResult[]> => {
      if (budget.remaining <= 0 || !commitMatches(ops, options)) return forward(ops);
      budget.take();
      const error =
        options.error ??
        new StoreError(
          'store_unavailable',
          `the store failed this write (t.faults.failNextCommit): ${describeOps(ops)}`,
        );
      if (!options.applied) return Promise.reject(error);
      return forward(ops).then(() => Promise.reject(error));
    };
    this.store.interceptors.push(interceptor);
    return budget;
  }

  /**
   * Removes every fault added so far (each stops firing).
   *
   * @example
   * ```ts
   * afterEach(() => t.faults.clear());
   * ```
   */
  clear(): void {
    for (const b of this.all) b.remove();
  }

  private add(times: number): Budget {
    if (!(times >= 0)) throw new RangeError(`times must be 0 or more, got ${times}`);
    const b = new Budget(times);
    this.all.push(b);
    return b;
  }
}

function nameOf(def: Definition | string): string {
  return typeof def === 'string' ? def : def.name;
}

function matches(runner: Runner, service: string, handler: string): boolean {
  return runner.row.service === service && runner.row.handler === handler;
}

function errorOf(error: InjectedError | undefined, n: number, message: string): Error {
  if (error === undefined) return new Error(message);
  return typeof error === 'function' ? error(n) : error;
}

/** The journal entries a write records, with their invocation. */
function entriesOf(ops: readonly WriteOp[]): Array<{ invocationId: string; entry: JournalEntry }> {
  const out: Array<{ invocationId: string; entry: JournalEntry }> = [];
  for (const op of ops)
    if (op.op === 'journal.put' || op.op === 'journal.complete')
      out.push({ invocationId: op.invocationId, entry: op.entry });
  return out;
}

function commitMatches(ops: readonly WriteOp[], o: CommitFaultOptions): boolean {
  if (o.match && !o.match(ops)) return false;
  const entries = entriesOf(ops);
  if (!o.match && entries.length === 0) return false;
  if (o.invocation === undefined && o.entry === undefined) return true;
  return entries.some(
    (e) =>
      (o.invocation === undefined || e.invocationId === o.invocation) &&
      (o.entry === undefined || e.entry.name === o.entry),
  );
}

/** `journal.put run "charge" of inv_1 #3, state.set ...`: a write, as a message names it. */
export function describeOps(ops: readonly WriteOp[]): string {
  return ops
    .map((op) => {
      if (op.op === 'journal.put' || op.op === 'journal.complete') {
        const e = op.entry;
        const what = `${e.kind}${e.name ? ` "${e.name}"` : ''}${e.done ? ' (done)' : ''}`;
        return `${op.op} ${what} of ${op.invocationId} #${op.index}`;
      }
      if (op.op === 'invocation.insert')
        return `invocation.insert ${op.row.service}${op.row.key ? `/${op.row.key}` : ''}/${op.row.handler} (${op.row.id})`;
      if (op.op === 'invocation.update')
        return `invocation.update ${op.id} ${Object.keys(op.set).join(',')}${op.set.status ? `=${op.set.status}` : ''}`;
      if ('id' in op && typeof op.id === 'string') return `${op.op} ${op.id}`;
      if ('invocationId' in op && typeof op.invocationId === 'string')
        return `${op.op} ${op.invocationId}`;
      return op.op;
    })
    .join(', ');
}
