import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../core/context.js';
import { handlerSpec, type HandlerSpec } from '../core/definitions.js';
import { parseDuration } from '../core/duration.js';
import { errorMessage, isTerminal, type KeelError, toErrorInfo } from '../core/errors.js';
import { pinnedVersion, type JournalEntry } from '../core/journal.js';
import { Prng } from '../core/prng.js';
import {
  ContextImpl,
  normalize,
  type AttemptedEntry,
  type InvocationHost,
} from '../core/replay.js';
import { resolveRetry, type ResolvedRetryPolicy } from '../core/retry.js';
import { validate } from '../core/schema.js';
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';
import type { InvocationRow, Store, WriteOp } from '../store/types.js';
import { TestAppError } from './errors.js';
import { acquireShadowGlobals, inShadow, type ShadowScope } from './replay-globals.js';

/**
 * A divergence found by replay checking (`testApp({ replay: 'every-step' })`): replaying an
 * invocation from its journal made the handler attempt something else than the journal
 * recorded, so the handler is not deterministic.
 */
export interface ReplayFailure {
  invocationId: string;
  /** `Service.handler`. */
  handler: string;
  /** The journal entry where the replay diverged (the one it was about to reach, for I/O). */
  index: number;
  /** The entry, as `run "charge"` or `set "total"`. */
  step: string;
  /** What the journal recorded there. */
  recorded: string;
  /** What the replayed handler attempted instead. */
  attempted: string;
  /** The whole explanation (the message of the `TestAppError` thrown for it). */
  message: string;
}

/** How long a shadow replay may wait for something outside the journal before it counts as stuck. */
const STALL_MS = 1000;
/**
 * Turns of the event loop a shadow replay that matched every entry is given to go on (to
 * attempt something new, to do I/O outside a step, or to return its result for comparison)
 * before it counts as waiting for a completion the journal does not have yet.
 */
const SETTLE_TURNS = 10;
/** The shadow's wall clock runs this far ahead of the real one: 5 days, 7 h, 13 min, 17 s. */
const SHIFT_MS = ((5 * 24 + 7) * 60 + 13) * 60_000 + 17_000;

const CAUSES =
  'A handler must make the same journaled calls, in the same order and with the same inputs, ' +
  'every time it runs on the same journal. Likely causes: Date.now() or new Date() outside a ' +
  'step (use `await ctx.now()`), Math.random() or crypto.randomUUID() (use ctx.random() or ' +
  'ctx.uuid()), a mutable global or module variable (keep it in state: ctx.get/ctx.set), or I/O ' +
  'outside a step (wrap it in ctx.run).';

/** What the live run sent along with a journal entry, seen in the same store write. */
interface Companion {
  /** A call's or send's input, as the callee's invocation stored it. */
  input?: unknown;
  /** A send's delay, in ms. */
  delayMs?: number;
  /** A completion's outcome (completeAwakeable, completePromise). */
  outcome?: { value?: unknown; error?: { message: string } };
}

/**
 * Replay checking for `testApp`: after every store write that adds to or completes an
 * invocation's journal, the invocation's handler is run again from scratch over the journal
 * so far (a *shadow replay*, beside the live run, which it never touches), with the clock,
 * `Math.random`, `crypto.randomUUID` and `performance.now` returning other values than the live
 * run saw and network calls reported. Every entry the replay reaches is compared with what
 * the code attempts there: kind and name, as the engine does, and also the inputs (state
 * values, call and send inputs and delays, sleep durations, completion values) and, for a
 * finished invocation, its result. The first difference is a {@link ReplayFailure}.
 */
export class ReplayChecker {
  readonly failures: ReplayFailure[] = [];
  /** Failures no client call or idle() has thrown yet. */
  private unreported: ReplayFailure[] = [];
  private readonly checks = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly companions = new Map<string, Companion>();
  private readonly diverged = new Set<string>();
  private readonly listeners = new Set<(f: ReplayFailure) => void>();
  private readonly specs = new Map<string, Resolved | undefined>();
  private readonly release: () => void;
  private engine: Engine | undefined;
  private runs = 0;
  private closed = false;

  constructor(private readonly raw: Store) {
    this.release = acquireShadowGlobals();
  }

  /** The engine whose handlers are replayed (set once it exists). */
  attach(engine: Engine): void {
    this.engine = engine;
  }

  /** Stops checking and puts the patched globals back. */
  close(): void {
    this.closed = true;
    this.release();
  }

  /** `store` with its writes observed: each one that touches a journal schedules a check. */
  wrap(store: Store): Store {
    const write = (ops: WriteOp[]): ReturnType<Store['write']> => {
      const p = store.write(ops);
      p.then(
        () => this.written(ops),
        () => undefined,
      );
      return p;
    };
    return new Proxy(store, {
      get: (target, prop) => (prop === 'write' ? write : Reflect.get(target, prop)) as unknown,
    });
  }

  /** `client` (an engine client: one method per handler, each a promise) with its calls guarded. */
  guardClient<C extends object>(client: C): C {
    const out: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(client))
      out[name] = (...args: unknown[]) =>
        this.guard((fn as (...a: unknown[]) => Promise<unknown>)(...args));
    return out as C;
  }

  /**
   * Resolves with `p`'s outcome once the checks of everything written so far are done; rejects
   * with the first divergence not yet thrown instead (at once, if one is found while `p` waits).
   */
  async guard<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined);
    let stop: ((f: ReplayFailure) => void) | undefined;
    const failed = new Promise<ReplayFailure>((resolve) => {
      stop = resolve;
      this.listeners.add(resolve);
    });
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | ReplayFailure;
    try {
      outcome = await Promise.race([
        p.then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
        failed,
      ]);
    } finally {
      this.listeners.delete(stop!);
    }
    await this.settle();
    // Found while this call waited, and thrown already by another call or idle(): this call
    // does not finish (the invocation may wait forever), so it fails with it too.
    if (!('ok' in outcome)) throw new TestAppError(outcome.message, 'replay_diverged');
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** Waits for every check in flight; throws the first divergence not thrown yet. */
  async settle(): Promise<void> {
    await this.drain();
    const [first, ...more] = this.unreported;
    if (!first) return;
    this.unreported = [];
    const also = more.length > 0 ? ` (and ${more.length} more: see t.replayFailures)` : '';
    throw new TestAppError(first.message + also, 'replay_diverged');
  }

  /** Resolves once no check is in flight. */
  async drain(): Promise<void> {
    while (this.checks.size > 0) await Promise.all([...this.checks.values()].map((c) => c.done));
  }

  // ---- scheduling --------------------------------------------------------------------------

  private written(ops: WriteOp[]): void {
    if (this.closed) return;
    const touched = new Set<string>();
    for (const op of ops) {
      if (op.op === 'journal.put') {
        touched.add(op.invocationId);
        this.noteCompanion(op, ops);
      } else if (op.op === 'journal.complete' || op.op === 'promise.await') {
        touched.add(op.invocationId);
      } else if (
        op.op === 'invocation.update' &&
        (op.set.status === 'completed' || op.set.status === 'failed')
      ) {
        touched.add(op.id);
      }
    }
    for (const id of touched) this.schedule(id);
  }

  /** Remembers what the live run passed with an entry that records no input of its own. */
  private noteCompanion(op: Extract<WriteOp, { op: 'journal.put' }>, ops: WriteOp[]): void {
    const { entry } = op;
    const key = `${op.invocationId}#${op.index}`;
    if ((entry.kind === 'call' || entry.kind === 'send') && entry.calleeId !== undefined) {
      for (const o of ops) {
        if (o.op !== 'invocation.insert' || o.row.id !== entry.calleeId) continue;
        const { row } = o;
        const delayMs =
          row.status === 'scheduled' && row.runAt !== undefined ? row.runAt - row.createdAt : 0;
        this.companions.set(key, { input: row.input, delayMs });
      }
    } else if (entry.kind === 'completeAwakeable' && entry.error === undefined) {
      for (const o of ops) {
        if (
          o.op === 'journal.complete' &&
          o.entry.kind === 'awakeable' &&
          o.entry.name === entry.name
        )
          this.companions.set(key, { outcome: { value: o.entry.value, error: o.entry.error } });
      }
    } else if (entry.kind === 'completePromise' && entry.error === undefined) {
      for (const o of ops) {
        if (o.op === 'promise.complete' && o.name === entry.name)
          this.companions.set(key, { outcome: { value: o.value, error: o.error } });
      }
    }
  }

  /** Checks `id` again; a check in flight is followed by one more, over the newer journal. */
  private schedule(id: string): void {
    if (this.diverged.has(id)) return;
    const running = this.checks.get(id);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false, done: Promise.resolve() };
    state.done = (async () => {
      try {
        do {
          state.again = false;
          // A fresh macrotask: the shadow starts with no live work queued in its microtasks.
          await new Promise<void>((r) => setImmediate(r));
          if (this.closed || this.diverged.has(id)) break;
          const failure = await this.check(id);
          if (failure) this.fail(failure);
        } while (state.again);
      } catch (err) {
        // A store that cannot answer (closed under a check, an injected fault) says nothing
        // about the handler. Anything else is a fault of the check itself: reported, not hidden.
        if (!this.closed && !isStoreError(err)) this.fail(this.broken(id, err));
      } finally {
        this.checks.delete(id);
      }
    })();
    this.checks.set(id, state);
  }

  private broken(id: string, err: unknown): ReplayFailure {
    const message =
      `replay check: checking invocation ${id} failed: ${errorMessage(err)}. This is a fault of ` +
      "keel/testing's replay checking, not of the handler (worth reporting); turn the mode off " +
      'for this test meanwhile.';
    return {
      invocationId: id,
      handler: '',
      index: -1,
      step: '',
      recorded: '',
      attempted: '',
      message,
    };
  }

  private fail(f: ReplayFailure): void {
    this.diverged.add(f.invocationId);
    this.failures.push(f);
    this.unreported.push(f);
    for (const l of this.listeners) l(f);
  }

  // ---- one check -----------------------------------------------------------------------

  /** Replays `id` over its journal so far; the divergence found, if any. */
  private async check(id: string): Promise<ReplayFailure | undefined> {
    // The row first: when it reads finished, the journal read after it is complete.
    const row = await this.raw.getInvocation(id);
    if (!row) return undefined;
    const journal = await this.raw.getJournal(id);
    const recorded = new Map<number, JournalEntry>();
    // Only the gapless prefix: an entry written out of order (concurrent steps) is checked
    // once the ones before it are there.
    for (const [i, e] of journal) {
      if (i !== recorded.size) break;
      recorded.set(i, e);
    }
    if (recorded.size === 0) return undefined;
    const resolved = this.resolve(row, recorded);
    if (!resolved) return undefined; // not a handler this app registered (Keel's own admin edits)
    const complete = recorded.size === journal.length;
    const finished = (row.status === 'completed' || row.status === 'failed') && complete;
    const shadow = new Shadow(this, row, resolved, recorded, this.companions, ++this.runs);
    return shadow.run(finished);
  }

  /** The handler an invocation runs, as the engine would pick it. */
  private resolve(
    row: InvocationRow,
    recorded: ReadonlyMap<number, JournalEntry>,
  ): Resolved | undefined {
    if (this.specs.has(row.id)) return this.specs.get(row.id);
    const k = kernelOf(this.engine!);
    let out: Resolved | undefined;
    const live = k.active.get(row.id);
    if (live) {
      out = { spec: live.spec, isWorkflow: live.isWorkflow, retryPolicy: live.retryPolicy };
    } else {
      const { def } = k.registry.versionFor(
        row.service,
        pinnedVersion(recorded.get(0)),
        recorded.size > 0,
      );
      const spec = def && handlerSpec(def, row.handler);
      if (def && spec)
        out = { spec, isWorkflow: def.kind === 'workflow', retryPolicy: resolveRetry(undefined) };
    }
    this.specs.set(row.id, out);
    return out;
  }

  /** @internal For {@link Shadow}: an extension's resource, as the live context sees it. */
  resource(key: symbol): unknown {
    return kernelOf(this.engine!).resources.get(key);
  }

  /** @internal For {@link Shadow}: the input schema of a call's or send's target, if any. */
  inputSchemaOf(targetName: string): HandlerSpec['options']['input'] {
    const [service, ...rest] = targetName.split('/');
    const handler = rest[rest.length - 1];
    if (service === undefined || handler === undefined) return undefined;
    const def = kernelOf(this.engine!).registry.get(service);
    return def ? handlerSpec(def, handler)?.options.input : undefined;
  }
}

interface Resolved {
  spec: HandlerSpec;
  isWorkflow: boolean;
  retryPolicy: ResolvedRetryPolicy;
}

/** A comparison left for after the replay (its expected value needs an async schema). */
interface Deferred {
  index: number;
  rec: JournalEntry;
  attempted: unknown;
  recordedInput: unknown;
}

const NEVER = new Promise<never>(() => undefined);

/**
 * One shadow replay: a fresh context over the journal so far, with a host that hands every
 * recorded result back at once and performs nothing. Reaching past the journal's end is
 * success; a mismatch, an error the context reports, I/O outside a step, or a result other
 * than the recorded one is a failure.
 */
class Shadow implements InvocationHost {
  readonly attempt = 0;
  readonly retryIndex = -1;
  private readonly matched = new Set<number>();
  private readonly deferred: Deferred[] = [];
  private failure: ReplayFailure | undefined;
  /** The code went past the journal's end (attempted something not recorded yet). */
  private frontier = false;
  private over = false;
  private readonly ctx: ContextImpl;

  constructor(
    private readonly checker: ReplayChecker,
    private readonly row: InvocationRow,
    private readonly resolved: Resolved,
    readonly recorded: ReadonlyMap<number, JournalEntry>,
    private readonly companions: ReadonlyMap<string, Companion>,
    private readonly run_: number,
  ) {
    // Version markers and the markers of retired patches are skipped by the context, not replayed.
    for (const [i, e] of recorded) if (e.kind === 'patch') this.matched.add(i);
    this.ctx = new ContextImpl(this, resolved.spec.shared);
  }

  get invocationId(): string {
    return this.row.id;
  }
  get service(): string {
    return this.row.service;
  }
  get key(): string {
    return this.row.key;
  }
  get retryPolicy(): ResolvedRetryPolicy {
    return this.resolved.retryPolicy;
  }
  get isWorkflow(): boolean {
    return this.resolved.isWorkflow;
  }

  async run(finished: boolean): Promise<ReplayFailure | undefined> {
    const scope: ShadowScope = {
      shiftMs: SHIFT_MS,
      prng: new Prng(`replay check ${this.row.id} ${this.run_}`),
      sideEffect: (what) => this.io(what),
    };
    let settled: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
    const fn = this.resolved.spec.fn;
    // An async wrapper: a handler that throws synchronously rejects, as the engine sees it.
    const p = inShadow(scope, async () => fn(this.ctx, this.row.input));
    p.then(
      (value) => (settled = { ok: true, value }),
      (error: unknown) => (settled = { ok: false, error }),
    );
    const started = performance.now();
    let verdict: ReplayFailure | undefined;
    for (let turn = 0; ; turn++) {
      if (this.failure) {
        verdict = this.failure;
        break;
      }
      if (settled) {
        verdict = await this.settled(settled, finished);
        break;
      }
      // Every entry matched: done once the code tries something new, or after a few turns
      // (it waits for a completion not journaled yet, or a finished one returns by then).
      if (this.allMatched && (this.frontier || turn >= SETTLE_TURNS)) break;
      if (performance.now() - started > STALL_MS) {
        verdict = this.stuck();
        break;
      }
      await new Promise<void>((r) => (turn < 50 ? setImmediate(r) : setTimeout(r, 5)));
    }
    this.over = true;
    this.ctx.kill();
    return verdict ?? (await this.runDeferred());
  }

  private get allMatched(): boolean {
    return this.matched.size >= this.recorded.size;
  }

  /** The first recorded entry the replay has not reached. */
  private firstUnmatched(): number {
    for (let i = 0; i < this.recorded.size; i++) if (!this.matched.has(i)) return i;
    return this.recorded.size;
  }

  // ---- verdicts -------------------------------------------------------------------------

  private async settled(
    s: { ok: true; value: unknown } | { ok: false; error: unknown },
    finished: boolean,
  ): Promise<ReplayFailure | undefined> {
    const what = s.ok
      ? `returning ${show(s.value)}`
      : `throwing ${errorName(s.error)}: ${errorMessage(s.error)}`;
    if (!this.allMatched) {
      const i = this.firstUnmatched();
      return this.diverge(
        i,
        describe(this.recorded.get(i)!),
        `${what}, ending before it reached this entry`,
      );
    }
    if (!finished) return undefined;
    const deferred = await this.runDeferred();
    if (deferred) return deferred;
    const { row } = this;
    const at = this.recorded.size;
    if (row.status === 'completed') {
      if (!s.ok) return this.diverge(at, `the result ${show(row.output)}`, what, 'the result');
      // The stored result went through the handler's output schema, which may transform it.
      const schema = this.resolved.spec.options.output;
      let value: unknown;
      try {
        value = normalize(schema ? await validate(schema, s.value, 'output') : s.value);
      } catch {
        return undefined; // the live result passed it: nothing comparable here
      }
      if (!sameValue(value, row.output))
        return this.diverge(
          at,
          `the result ${show(row.output)}`,
          `the result ${show(value)}`,
          'the result',
        );
    } else if (row.error && !s.ok && isTerminal(s.error)) {
      const info = toErrorInfo(s.error);
      if (info.message !== row.error.message)
        return this.diverge(
          at,
          `the failure "${row.error.message}"`,
          `the failure "${info.message}"`,
          'the result',
        );
    }
    return undefined;
  }

  private stuck(): ReplayFailure {
    const i = this.firstUnmatched();
    return this.diverge(
      i,
      describe(this.recorded.get(i)!),
      `nothing: after ${STALL_MS} ms the replay still waited for something outside the journal (a promise no ctx call made, or a journaled wait the live run did not wait for)`,
      'the replay stopped short',
    );
  }

  private io(what: string): void {
    if (this.over || this.failure) return;
    const i = this.firstUnmatched();
    const at =
      i < this.recorded.size
        ? `entry ${i}, ${describe(this.recorded.get(i)!)}`
        : 'the end of the journal';
    const message =
      `replay check: invocation ${this.row.id} (${this.handlerName}) called ${what} outside ctx.run ` +
      `while replaying (before ${at}). I/O outside a step runs again on every replay and after every ` +
      'crash, and its result is not journaled: wrap it in ctx.run. ' +
      CAUSES;
    this.failure = {
      invocationId: this.row.id,
      handler: this.handlerName,
      index: i,
      step: i < this.recorded.size ? describe(this.recorded.get(i)!) : 'the end of the journal',
      recorded: 'no I/O',
      attempted: what,
      message,
    };
  }

  private get handlerName(): string {
    return `${this.row.service}.${this.row.handler}`;
  }

  private diverge(
    index: number,
    recorded: string,
    attempted: string,
    step?: string,
  ): ReplayFailure {
    const entry = this.recorded.get(index);
    const stepName = step ?? (entry ? describe(entry) : 'the result');
    const where = entry ? `entry ${index}, ${describe(entry)}` : stepName;
    const message =
      `replay check: invocation ${this.row.id} (${this.handlerName}) diverged from its journal at ` +
      `${where}: the journal recorded ${recorded}, but replaying the handler attempted ${attempted}. ` +
      CAUSES;
    return {
      invocationId: this.row.id,
      handler: this.handlerName,
      index,
      step: stepName,
      recorded,
      attempted,
      message,
    };
  }

  /** Comparisons whose expected value a target's input schema decides (async). */
  private async runDeferred(): Promise<ReplayFailure | undefined> {
    for (const d of this.deferred) {
      const schema = this.checker.inputSchemaOf(d.rec.name);
      let expected: unknown;
      try {
        expected = schema
          ? await validate(schema, d.attempted, `input of ${d.rec.name}`)
          : normalize(d.attempted);
        expected = normalize(expected);
      } catch {
        continue; // the live call would have failed on this input too: nothing to compare
      }
      if (!sameValue(expected, d.recordedInput))
        return this.diverge(
          d.index,
          `${describe(d.rec)} with input ${show(d.recordedInput)}`,
          `${describe(d.rec)} with input ${show(expected)}`,
        );
    }
    return undefined;
  }

  // ---- the strict comparison (InvocationHost.checkReplay) -------------------------------

  checkReplay(index: number, rec: JournalEntry, attempted: AttemptedEntry): KeelError | undefined {
    this.matched.add(index);
    // A delivered cancellation took the place of whatever the code attempted there.
    if (rec.kind === 'cancel') return undefined;
    const f = this.compare(index, rec, attempted);
    if (!f) return undefined;
    this.failure ??= f;
    return new TestAppError(f.message, 'replay_diverged');
  }

  private compare(index: number, rec: JournalEntry, a: AttemptedEntry): ReplayFailure | undefined {
    const companion = this.companions.get(`${this.row.id}#${index}`);
    switch (rec.kind) {
      case 'sleep': {
        if (rec.wakeAt === undefined || rec.startedAt === undefined) return undefined;
        let ms: number;
        try {
          ms = parseDuration(a.input as never);
        } catch {
          return undefined;
        }
        const was = rec.wakeAt - rec.startedAt;
        if (ms === was) return undefined;
        return this.diverge(index, `a sleep of ${was} ms`, `a sleep of ${ms} ms`);
      }
      case 'set': {
        if (sameValue(a.input, rec.value)) return undefined;
        return this.diverge(
          index,
          `set "${rec.name}" to ${show(rec.value)}`,
          `set "${rec.name}" to ${show(a.input)}`,
        );
      }
      case 'call':
      case 'send': {
        if (companion && 'input' in companion)
          this.deferred.push({ index, rec, attempted: a.input, recordedInput: companion.input });
        if (rec.kind === 'send' && companion?.delayMs !== undefined) {
          let ms = 0;
          try {
            ms = a.options?.delay === undefined ? 0 : parseDuration(a.options.delay);
          } catch {
            return undefined;
          }
          if (ms !== companion.delayMs)
            return this.diverge(
              index,
              `${describe(rec)} with a delay of ${companion.delayMs} ms`,
              `${describe(rec)} with a delay of ${ms} ms`,
            );
        }
        return undefined;
      }
      case 'completeAwakeable':
      case 'completePromise': {
        const was = companion?.outcome;
        const now = a.input as { value?: unknown; error?: { message: string } } | undefined;
        if (!was || !now) return undefined;
        const same = was.error
          ? now.error?.message === was.error.message
          : now.error === undefined && sameValue(now.value, was.value);
        if (same) return undefined;
        return this.diverge(
          index,
          `${describe(rec)} with ${outcomeText(was)}`,
          `${describe(rec)} with ${outcomeText(now)}`,
        );
      }
      default:
        return undefined;
    }
  }

  // ---- InvocationHost: replay hands back what the journal has; anything live stops it ---

  fatal(error: KeelError): void {
    if (this.failure || this.over) return;
    const nd = error as Partial<{ entryIndex: number; recorded: string; attempted: string }>;
    if (typeof nd.entryIndex === 'number' && nd.recorded && nd.attempted)
      this.failure = this.diverge(nd.entryIndex, nd.recorded, nd.attempted);
    else
      this.failure = this.diverge(
        this.firstUnmatched(),
        'an entry the replay could not reach',
        `an error: ${error.message}`,
      );
  }

  /** The code attempted something the journal does not have yet: the replay is done. */
  private live(): void {
    this.frontier = true;
  }

  now(): number {
    return this.row.modifiedAt;
  }
  monotonic(): number {
    return performance.now();
  }
  epochOf(): number {
    return this.row.modifiedAt;
  }
  commit(): Promise<unknown> {
    this.live();
    return NEVER;
  }
  append(): void {
    this.live();
  }
  readState(): Promise<unknown> {
    this.live();
    return NEVER;
  }
  readStateKeys(): Promise<string[]> {
    this.live();
    return NEVER;
  }
  startSleep(): void {
    this.live();
  }
  startCall(): void {
    this.live();
  }
  startSend(): Promise<string> {
    this.live();
    return NEVER;
  }
  awaitCompletion(index: number): Promise<JournalEntry> {
    // A recorded entry still waiting (its completion not journaled yet), or a new wait.
    if (!this.recorded.has(index)) this.live();
    return NEVER;
  }
  trackBody(): void {
    this.live();
  }
  runStepBody(): Promise<unknown> {
    // Never reached for a recorded step; a new step's body is not the replay's to run.
    this.live();
    return NEVER;
  }
  mayStartStep(): boolean {
    return !this.over;
  }
  awakeablesDurable(): undefined {
    return undefined;
  }
  retry(): void {
    this.live();
  }
  newAwakeableId(): string {
    this.live();
    return 'awk_00000000000000000000000000';
  }
  createAwakeable(): void {
    this.live();
  }
  completeAwakeable(): Promise<JournalEntry> {
    this.live();
    return NEVER;
  }
  awaitPromise(): void {
    this.live();
  }
  peekPromise(): Promise<undefined> {
    this.live();
    return NEVER;
  }
  completePromise(): Promise<JournalEntry> {
    this.live();
    return NEVER;
  }
  takeCancel(): boolean {
    return false;
  }
  log(_level: keyof Logger): void {
    // a replay logs nothing (the live run did)
  }
  resource(key: symbol): unknown {
    return this.checker.resource(key);
  }
}

/** `run "charge"`, `sleep`, `call "Payments/charge"`: an entry as the failure names it. */
function describe(e: Pick<JournalEntry, 'kind' | 'name'>): string {
  return e.name ? `${e.kind} "${e.name}"` : e.kind;
}

function sameValue(a: unknown, b: unknown): boolean {
  // A missing value and null are the same JSON.
  return isDeepStrictEqual(a ?? null, b ?? null);
}

/** A value for a message: JSON, cut short. */
function show(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? 'undefined' : (JSON.stringify(v) ?? typeof v);
  } catch {
    s = `a ${typeof v} without a JSON form`;
  }
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function outcomeText(o: { value?: unknown; error?: { message: string } }): string {
  return o.error ? `the failure "${o.error.message}"` : `the value ${show(o.value)}`;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'a non-error';
}

/** An error of the store (closed, unreachable, a fault a test injected), not of the check. */
function isStoreError(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown } | null;
  return e?.name === 'StoreError' || (typeof e?.code === 'string' && e.code.startsWith('store_'));
}
