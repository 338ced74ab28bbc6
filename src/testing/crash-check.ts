import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Duration } from '../core/duration.js';
import { errorMessage } from '../core/errors.js';
import { kernelOf } from '../engine/kernel.js';
import { StoreError } from '../store/errors.js';
import type { InvocationStatus, OpResult, WriteOp } from '../store/types.js';
import { TestAppError } from './errors.js';
import { describeOps } from './faults.js';
import { instrumentsOf } from './instrument.js';
import { testAppIn, type TestApp, type TestAppOptions } from './test-app.js';

/** Where, relative to the k-th store write, the process dies. */
export type CrashMoment = 'before' | 'after';

/** Options of {@link checkCrashes}: the test app's options, the scenario, what to compare. */
export interface CrashCheckOptions extends TestAppOptions {
  /**
   * Starts the scenario on a fresh test app and resolves with the id of the invocation to check
   * once it is accepted (a send client's id). It runs once per crash point, so it must do the
   * same each time.
   */
  run: (t: TestApp) => Promise<string>;
  /**
   * What must be the same after every crash as without one: anything the test can read (the
   * result, state, a fake provider's ledger). Default: the invocation's outcome (`{ output }` or
   * `{ error }`), or `{ status }` if it has not finished.
   */
  observe?: (t: TestApp, id: string) => Promise<unknown>;
  /**
   * Crash just `'before'` the k-th write is durable (it is lost), just `'after'` (durable, but
   * the engine never hears back), or both. Default both.
   */
  at?: readonly CrashMoment[];
  /** Only these crash points (1-based write numbers), e.g. to look at one that failed. */
  points?: readonly number[];
  /** How far `runUntilIdle({ skipTime: true })` may skip after each run. Default `365d`. */
  limit?: Duration;
  /**
   * Crash points checked at the same time, each on its own test app. Default 1. More is faster
   * only when `run` and `observe` keep nothing outside the engine (a module-level counter, a
   * fake provider's list) that concurrent runs would share.
   */
  concurrency?: number;
}

/** A completed step whose body ran again after the crash. */
export interface RerunStep {
  invocationId: string;
  /** `Service/handler` of the invocation. */
  target: string;
  index: number;
  name: string;
  /** Runs of its body after the crash (it should be 0: its result was durable). */
  runs: number;
}

/** One crash point of {@link checkCrashes}. */
export interface CrashPointReport {
  /** The store write the process died at (1-based, counted from the scenario's acceptance). */
  k: number;
  at: CrashMoment;
  /** The ops of that write, e.g. `journal.put run "charge" (done) of inv_… #2`. */
  write: string;
  /** False when the run finished in fewer writes than the uncrashed one (nothing crashed). */
  reached: boolean;
  /**
   * Whether `run` had resolved (the client had its answer) before the crash. If not, and the
   * invocation's insert was not durable, `run` is called again on the recovered engine, as a
   * client that got no answer would.
   */
  acknowledged: boolean;
  /** What was durable at the crash: the checked invocation's status and journal entries. */
  committed: { status: InvocationStatus | 'missing'; entries: number; completedSteps: number };
  /** What `observe` read once the recovered engine was idle. */
  outcome: unknown;
  /** Completed steps that ran again after the crash (any invocation). */
  rerun: RerunStep[];
  /** Handlers invoked a different number of times than without a crash: `target: [expected, got]`. */
  invocations: Record<string, [number, number]>;
  /** What went wrong at this point (empty when nothing did). */
  problems: string[];
}

/** What {@link checkCrashes} found. */
export interface CrashReport {
  /** The uncrashed run: what `observe` read, and how many store writes followed acceptance. */
  baseline: { outcome: unknown; writes: number; invocations: Record<string, number> };
  points: CrashPointReport[];
}

/**
 * The failure of {@link checkCrashes} (code `crash_check`): the message names the first failing
 * crash point, `report` holds every point.
 *
 * @example
 * ```ts
 * const err = await checkCrashes({ services, run }).catch((e: unknown) => e);
 * if (err instanceof CrashCheckError)
 *   console.log(err.report.points.filter((p) => p.problems.length > 0));
 * ```
 */
export class CrashCheckError extends TestAppError {
  constructor(
    message: string,
    /** Everything the check found, failing points included. */
    readonly report: CrashReport,
  ) {
    super(message, 'crash_check');
  }
}

/** The error the engine's write sees: the process is gone, no answer comes. */
const killed = (): StoreError =>
  new StoreError('store_closed', 'the process was killed (checkCrashes); no answer came');

/**
 * Crash testing: runs a scenario once without a crash, counting the store writes from the
 * moment its invocation is accepted until everything is idle (N), then N more times (twice
 * each by default), each on a fresh test app, killing the engine as `kill -9` would at the
 * k-th write: just before it is durable, or just after (durable, but the engine never hears
 * back). A new engine then recovers from the same SQLite file, runs until idle (skipping
 * time) and the check compares, for every crash point:
 *
 * - the outcome (`observe`: the result by default) with the uncrashed run's;
 * - that no `ctx.run` step whose result was durable at the crash ran its body again;
 * - that every handler was invoked as many times as without a crash (a completed call or send
 *   was not made twice).
 *
 * Crash points are every store write (one `write()` call: the SQLite store may commit several
 * in one transaction) of the scenario, whichever invocation it is for: the checked
 * invocation, the handlers it calls, what they send. Resolves with the report, or throws a
 * {@link CrashCheckError} (`crash_check`) naming the first failing crash point.
 *
 * Each crash point costs a fresh test app and a recovery: a scenario of 30 writes takes about
 * a second or two. Faults (`t.faults`) added in `run` do not carry over to the recovered
 * engine.
 *
 * @example
 * ```ts
 * const report = await checkCrashes({
 *   services: orderSaga,
 *   run: (t) => t.workflowSend(OrderSaga, 'o1').run(order),
 *   // Besides the result: the customer was charged exactly once.
 *   observe: async (t, id) => ({
 *     result: await t.attach(id),
 *     ledger: await t.object(OrderSagaPayments, 'cust-1').ledger(),
 *   }),
 * });
 * expect(report.points.length).toBeGreaterThan(10);
 * ```
 */
export async function checkCrashes(options: CrashCheckOptions): Promise<CrashReport> {
  const {
    run,
    observe = defaultObserve,
    at = ['before', 'after'],
    points,
    limit,
    concurrency = 1,
    ...app
  } = options;
  const runUntilIdle = { skipTime: true, limit };
  // Every run starts from a copy of one migrated database: a crash point then costs two engine
  // starts, not two migrations as well.
  const template = await migratedTemplate();
  const fresh = (): Promise<TestApp> => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-crash-'));
    copyFileSync(template.file, join(dir, 'keel.db'));
    return testAppIn(dir, app);
  };

  try {
    // The uncrashed run.
    const base = await fresh();
    let baseline: CrashReport['baseline'];
    let rootInsert: number;
    try {
      const seen = new WriteLog(() => true);
      base.watched.interceptors.unshift(seen.interceptor);
      const id = await run(base);
      await base.runUntilIdle(runUntilIdle);
      seen.stop();
      rootInsert = seen.inserted.indexOf(id);
      baseline = {
        outcome: await observe(base, id),
        writes: seen.count,
        invocations: await invocationCounts(base),
      };
    } finally {
      await base.close();
    }

    const ks = points ?? Array.from({ length: baseline.writes }, (_, i) => i + 1);
    const todo = ks.flatMap((k) => at.map((moment) => ({ k, moment })));
    const results: CrashPointReport[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const i = next++;
        const { k, moment } = todo[i]!;
        results[i] = await crashPoint(k, moment, rootInsert, baseline);
      }
    };
    const workers = Math.max(1, Math.min(Math.floor(concurrency), todo.length));
    await Promise.all(Array.from({ length: workers }, worker));
    const report: CrashReport = { baseline, points: results };

    const failed = report.points.filter((p) => p.problems.length > 0);
    if (failed.length > 0) {
      const first = failed[0]!;
      const others = failed.slice(1).map((p) => `${p.k} ${p.at}`);
      throw new CrashCheckError(
        `a crash ${first.at} store write ${first.k} of ${baseline.writes} (${first.write}) ` +
          `changed what the scenario does: ${first.problems.join('; ')}.` +
          (others.length > 0
            ? ` ${others.length} more crash point(s) failed: ${others.slice(0, 20).join(', ')}` +
              `${others.length > 20 ? ', ...' : ''}.`
            : '') +
          ' Code outside ctx.run runs again whenever an invocation replays after a crash, and a ' +
          'step whose result was not durable yet runs again too (at least once): move side ' +
          'effects into steps and make them idempotent (an idempotency key from the invocation ' +
          'id and the step). Re-run one crash point with `points: [k]`.',
        report,
      );
    }
    return report;
  } finally {
    template.remove();
  }

  async function crashPoint(
    k: number,
    moment: CrashMoment,
    rootInsert: number,
    baseline: CrashReport['baseline'],
  ): Promise<CrashPointReport> {
    const a = await fresh();
    const dir = dirname(a.path);
    const point: CrashPointReport = {
      k,
      at: moment,
      write: '',
      reached: false,
      acknowledged: false,
      committed: { status: 'missing', entries: 0, completedSteps: 0 },
      outcome: undefined,
      rerun: [],
      invocations: {},
      problems: [],
    };
    let crashed: Promise<void> | undefined;
    try {
      const kernel = kernelOf(a.engine);
      let onCrash: () => void = () => undefined;
      const dead = new Promise<'dead'>((resolve) => (onCrash = () => resolve('dead')));
      const die = (): void => {
        if (crashed) return;
        // Synchronously, in the engine's own call: nothing more of this process happens.
        crashed = kernel.crash();
        // Nothing in memory survives a kill -9, loads and status writes in flight included.
        kernel.loading.clear();
        kernel.settling.clear();
        onCrash();
      };
      const log = new WriteLog(() => !crashed);
      a.watched.interceptors.unshift((ops, forward) => {
        if (crashed || log.count + 1 !== k) return log.interceptor(ops, forward);
        point.write = describeOps(ops);
        point.reached = true;
        if (moment === 'before') {
          log.count++;
          die();
          return Promise.reject(killed());
        }
        return log.interceptor(ops, forward).then(() => {
          die();
          return Promise.reject(killed());
        });
      });

      // The request: answered before the crash, or not (the client then sends it again).
      const asked = run(a).then(
        (id) => ({ id }),
        (err: unknown) => ({ err }),
      );
      const first = await Promise.race([asked, dead]);
      let id: string | undefined;
      if (first !== 'dead') {
        if ('err' in first) throw first.err;
        id = first.id;
        point.acknowledged = true;
        const idle = a.runUntilIdle(runUntilIdle).then(
          () => undefined,
          (err: unknown) => err,
        );
        const settled = await Promise.race([idle, dead]);
        if (!crashed) {
          if (settled !== undefined) throw settled as Error;
          // Fewer writes than the uncrashed run: nothing to crash at. Not a failure by itself.
          return point;
        }
        await idle;
      }
      await crashed;
      // An unanswered request: the invocation it created, if that insert is durable.
      id ??= log.durableInserts[rootInsert];
      point.committed = log.committed(id);

      const b = await testAppIn(dir, { ...app, startAt: a.clock.now() });
      try {
        try {
          // Never accepted: the client, which got no answer, sends the request again.
          id ??= await run(b);
          await b.runUntilIdle(runUntilIdle);
          point.outcome = await observe(b, id);
        } catch (err) {
          // Stuck after recovery (idle_stalled, time_limit), or observe failed: this point's.
          point.problems.push(`after the recovery: ${errorMessage(err)}`);
        }
        if (point.problems.length === 0 && !isDeepStrictEqual(point.outcome, baseline.outcome))
          point.problems.push(
            `the outcome differs from the uncrashed run's: expected ${show(baseline.outcome)}, ` +
              `got ${show(point.outcome)}`,
          );
        const ins = instrumentsOf(kernelOf(b.engine));
        for (const s of log.completedSteps) {
          const runs = ins.runsOf(s.invocationId, s.index);
          if (runs > 0) point.rerun.push({ ...s, target: log.targetOf(s.invocationId), runs });
        }
        for (const s of point.rerun)
          point.problems.push(
            `step "${s.name}" (entry ${s.index}) of ${s.target} ${s.invocationId} ran again ` +
              `after the crash (${s.runs} time(s)) although its result was durable`,
          );
        const counts = await invocationCounts(b);
        for (const target of new Set([
          ...Object.keys(counts),
          ...Object.keys(baseline.invocations),
        ])) {
          const want = baseline.invocations[target] ?? 0;
          const got = counts[target] ?? 0;
          if (want !== got) point.invocations[target] = [want, got];
        }
        for (const [target, [want, got]] of Object.entries(point.invocations))
          point.problems.push(`${target} was invoked ${got} time(s), ${want} without a crash`);
      } finally {
        await b.close();
      }
      return point;
    } finally {
      // No crash (the run took fewer writes, or failed): stop the engine before the file goes.
      if (!crashed) await a.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/**
 * The writes of one run, as they reach the store: how many, the invocations they insert, and
 * what became durable (the writes the store committed, answered or not: a crash's close still
 * commits what was queued before it).
 */
class WriteLog {
  count = 0;
  /** Ids of the invocations inserted, in write order. */
  readonly inserted: string[] = [];
  /** Ids of the invocations whose insert committed, in write order. */
  readonly durableInserts: string[] = [];
  /** Completed `ctx.run` steps whose entry committed. */
  readonly completedSteps: Array<{ invocationId: string; index: number; name: string }> = [];
  private readonly durable: WriteOp[][] = [];
  private readonly targets = new Map<string, string>();
  private counting = true;

  constructor(private readonly live: () => boolean) {}

  stop(): void {
    this.counting = false;
  }

  readonly interceptor = (
    ops: WriteOp[],
    forward: (ops: WriteOp[]) => Promise<OpResult[]>,
  ): Promise<OpResult[]> => {
    if (!this.counting || !this.live()) return forward(ops);
    this.count++;
    for (const op of ops)
      if (op.op === 'invocation.insert') {
        this.inserted.push(op.row.id);
        this.targets.set(op.row.id, `${op.row.service}/${op.row.handler}`);
      }
    const p = forward(ops);
    p.then(
      () => this.committedWrite(ops),
      () => undefined,
    );
    return p;
  };

  private committedWrite(ops: WriteOp[]): void {
    this.durable.push(ops);
    for (const op of ops) {
      if (op.op === 'invocation.insert') this.durableInserts.push(op.row.id);
      if ((op.op === 'journal.put' || op.op === 'journal.complete') && op.entry.kind === 'run')
        if (op.entry.done)
          this.completedSteps.push({
            invocationId: op.invocationId,
            index: op.index,
            name: op.entry.name ?? '',
          });
    }
  }

  targetOf(id: string): string {
    return this.targets.get(id) ?? '?';
  }

  /** What was durable of invocation `id` at the crash. */
  committed(id: string | undefined): CrashPointReport['committed'] {
    const out: CrashPointReport['committed'] = { status: 'missing', entries: 0, completedSteps: 0 };
    if (id === undefined) return out;
    const entries = new Set<number>();
    for (const ops of this.durable)
      for (const op of ops) {
        if (op.op === 'invocation.insert' && op.row.id === id) out.status = op.row.status;
        if (op.op === 'invocation.update' && op.id === id && op.set.status)
          out.status = op.set.status;
        if ((op.op === 'journal.put' || op.op === 'journal.complete') && op.invocationId === id)
          entries.add(op.index);
      }
    out.entries = entries.size;
    out.completedSteps = this.completedSteps.filter((s) => s.invocationId === id).length;
    return out;
  }
}

/** A freshly migrated database to copy (removed with `remove()`). */
async function migratedTemplate(): Promise<{ file: string; remove: () => void }> {
  const { openSqliteStore } = await import('../store/sqlite/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'keel-crash-template-'));
  const file = join(dir, 'keel.db');
  try {
    // Closing checkpoints the WAL into the file: the file alone is the whole database.
    await openSqliteStore({ path: file, durability: 'os' }).close();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

async function defaultObserve(t: TestApp, id: string): Promise<unknown> {
  const out = await t.output(id);
  return out.ready ? out.outcome : { status: out.status };
}

/** Invocations by `Service/handler`, to compare with the uncrashed run. */
async function invocationCounts(t: TestApp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const i of await t.invocations()) {
    const target = `${i.service}/${i.handler}`;
    out[target] = (out[target] ?? 0) + 1;
  }
  return out;
}

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}
