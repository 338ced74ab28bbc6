import { KeelError } from '../core/errors.js';
import {
  InvalidFlowControlError,
  ThrottledError,
  type Debounce,
  type Throttle,
} from '../core/flow.js';
import { StoreError } from '../store/errors.js';
import type { InvocationRow, KvRow, WriteOp } from '../store/types.js';
import type { Admit } from './admission.js';
import { dedupeKey } from './dedupe.js';
import type { SendResult } from './info.js';
import type { Kernel } from './kernel.js';
import { DEBOUNCE_TIMER } from './timer-firing.js';

/**
 * Debounce and throttle of sends (see docs/flow-control.md). Everything they decide by lives in
 * the Store, so processes sharing a PostgreSQL store debounce and throttle together:
 *
 * - **Debounce.** A burst is one invocation, stored `scheduled` with a start timer
 *   ({@link DEBOUNCE_TIMER}) at `runAt`. Each send of the burst moves `runAt` later and sets
 *   the input in ONE write that first expects the row `scheduled`: once the start committed, that
 *   write fails as a whole and the send begins the next burst instead. So a send is either in
 *   the invocation that runs (its input, if it was the last) or starts a new one; never lost,
 *   never run twice. The bursts of a key form a chain: the dedupe key of each burst's invocation
 *   names the burst before it (`…#<previous id>`, `…#-` for the first), so concurrent first
 *   sends of a burst, in any process, insert one invocation (the store's unique dedupe key
 *   decides) and the others join it. A KV row (scope `keel.debounce`) points at the newest
 *   burst, so a send starts there rather than walking the chain. The row expires (and retention
 *   deletes it) long after its burst was due to start: see {@link FlowControl.pointerLife}.
 * - **Throttle.** A KV row per key (scope `keel.throttle`) holds the reserved start times of
 *   the last `limit` starts, written by compare-and-set. A send reserves the first time at which
 *   fewer than `limit` starts fall within `period` before it, and at or after every earlier
 *   reservation (so the times only grow and the last `limit` are all that matters): now, or the
 *   `limit`-th last one plus `period`. `delay` schedules the invocation at that time; `drop`
 *   refuses when it is later than now. The reservation is written before the invocation: a
 *   crash between the two loses a slot, never exceeds the limit.
 */
export class FlowControl {
  /**
   * Sends of one debounce or throttle key in this process, one after the other: in call order
   * (the last call's input is the last input), and without racing each other through the
   * store. Processes still race, which the store's conditions settle.
   */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly k: Kernel) {}

  /**
   * Sends `req` (which has `debounce` or `throttle`): resolves once the send is durable.
   * `extra`: ops that ride in the write that makes the send durable (a handler's journal entry
   * of the send). `normalized`: the input is already in its JSON form.
   */
  async send(
    req: Admit,
    extra?: (row: InvocationRow) => WriteOp[],
    normalized = false,
  ): Promise<SendResult> {
    const { k } = this;
    k.checkRunning();
    checkCombination(req);
    // Checked before anything is counted: an input the handler refuses must not use a slot.
    const input = await k.admission.checkInput(req, req.input, normalized);
    const checked: Admit = { ...req, input };
    if (req.debounce) return this.debounce(checked, req.debounce, extra);
    return this.throttle(checked, req.throttle!, extra);
  }

  // ---- debounce ----------------------------------------------------------------------------

  private debounce(
    req: Admit,
    d: Debounce,
    extra: ((row: InvocationRow) => WriteOp[]) | undefined,
  ): Promise<SendResult> {
    const kvKey = `${req.def.name}/${escape(req.key)}/${escape(req.spec.name)}/${d.key}`;
    return this.inOrder(`d:${kvKey}`, async () => {
      const { k } = this;
      const pointer = await k.store.getKv(DEBOUNCE_SCOPE, kvKey);
      const head = pointer?.value as BurstPointer | undefined;
      let after = head?.id;
      let gen = head?.gen ?? 0;
      // Each step either ends or moves one burst along the chain; a walk this long means the
      // pointer is far behind, which only a stream of lost pointer writes could cause (or, with
      // no pointer, a hundred earlier bursts all still kept: see `pointerLife`).
      for (let step = 0; step < MAX_CHAIN_STEPS; step++) {
        // Joining the burst the pointer names: the join keeps the pointer from expiring first.
        const keep = pointer && after === head?.id ? { key: kvKey, row: pointer } : undefined;
        if (after !== undefined && (await this.join(after, req, d, extra, keep)))
          return { invocationId: after, status: 'scheduled', existing: true };
        const admitted = await k.admission.create(
          {
            ...req,
            dedupe: `${DEBOUNCE_DEDUPE}${kvKey}#${after ?? '-'}`,
            delayMs: d.periodMs,
            startTimer: DEBOUNCE_TIMER,
          },
          undefined,
          extra,
          'validated',
        );
        await admitted.durable;
        gen++;
        if (!admitted.existing) {
          const runAt = admitted.row.runAt ?? k.clock.now() + d.periodMs;
          const expiresAt = runAt + this.pointerLife(req);
          await this.point(kvKey, { id: admitted.row.id, gen }, pointer, expiresAt);
          return { invocationId: admitted.row.id, status: 'scheduled', existing: false };
        }
        // Another send (this process's earlier one, or another process's) created this burst:
        // join it, or go past it if it started already.
        after = admitted.row.id;
      }
      throw new KeelError(
        `debounce key "${d.key}" of ${req.def.name}.${req.spec.name} is contended beyond ${MAX_CHAIN_STEPS} bursts; send again`,
        { code: 'debounce_contended', status: 503 },
      );
    });
  }

  /**
   * Adds a send to burst `id` if it has not started: its input, and `runAt` moved to `period`
   * from now (bounded by `maxWait` from the burst's first send, never earlier than it was),
   * in one write that fails unless the row is still `scheduled`. False when it started (or is
   * gone): the send then belongs to the next burst.
   */
  private join(
    id: string,
    req: Admit,
    d: Debounce,
    extra: ((row: InvocationRow) => WriteOp[]) | undefined,
    keep: KeptPointer | undefined,
  ): Promise<boolean> {
    return this.exclusive(id, () => this.joinNow(id, req, d, extra, keep));
  }

  private async joinNow(
    id: string,
    req: Admit,
    d: Debounce,
    extra: ((row: InvocationRow) => WriteOp[]) | undefined,
    keep: KeptPointer | undefined,
  ): Promise<boolean> {
    const { k } = this;
    const row = await k.store.getInvocation(id);
    if (row?.status !== 'scheduled') return false;
    const now = k.clock.now();
    let runAt = now + d.periodMs;
    if (d.maxWaitMs !== undefined) runAt = Math.min(runAt, row.createdAt + d.maxWaitMs);
    // Never earlier: the timer held in memory may be at the old time already, and moving it
    // earlier would need every process holding it told.
    runAt = Math.max(runAt, row.runAt ?? runAt);
    try {
      await k.store.write([
        { op: 'invocation.expect', id, status: ['scheduled'] },
        { op: 'invocation.update', id, set: { input: req.input, runAt, modifiedAt: now } },
        { op: 'timer.put', timer: { invocationId: id, index: DEBOUNCE_TIMER, fireAt: runAt } },
        ...this.extendPointer(keep, runAt, req, now),
        ...(extra ? extra(row) : []),
      ]);
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === 'precondition_failed') return false;
      throw err;
    }
  }

  /**
   * How long past its burst's `runAt` a pointer is kept: twice the service's retention, at
   * least two hours. When it expires and retention deletes it, the burst it names has started
   * (half that time covers a timer that fired late: an engine restart), and the bursts before
   * it have almost surely been deleted by retention too (each is deleted one retention period
   * after it finished, and they started before it). A send then finds no pointer and begins at the chain's start
   * (`…#-`): free, it starts a new burst; taken (an old burst still kept), it walks the few
   * bursts still kept, each started, and starts a new one after them. Either way no send is
   * lost or joins a burst that started. Until retention deletes it, an expired pointer is read
   * and followed like any other (the store returns it): it names a real burst, and its
   * successors are found by the chain as ever.
   *
   * What this does not cover: a pointer deleted while its burst is still `scheduled` (every
   * engine was stopped for longer than that, so its timer could not fire), or a send that read
   * the pointer just before retention deleted it while another send found none: each can start
   * a second burst beside the first. Every send still runs exactly once; the key is only
   * debounced into two invocations.
   */
  private pointerLife(req: Admit): number {
    return 2 * Math.max(this.k.retention.of(req.def.name), POINTER_SLACK_MS);
  }

  /**
   * The op that pushes back the expiry of the pointer a join reached its burst by, when the
   * join moved `runAt` close to it: by compare-and-set from the row read, so a pointer moved on
   * meanwhile is left alone (the op answers not ok, the join stands). Rare: once per half a
   * {@link pointerLife} of a burst kept waiting by its sends (without `maxWait`). A pointer
   * already expired is not touched: retention may be deleting it, and a put would revive a
   * stale one under another send's new version.
   */
  private extendPointer(
    keep: KeptPointer | undefined,
    runAt: number,
    req: Admit,
    now: number,
  ): WriteOp[] {
    if (!keep) return [];
    const life = this.pointerLife(req);
    const { expiresAt, value, version } = keep.row;
    if (expiresAt !== undefined && (expiresAt <= now || expiresAt >= runAt + life / 2)) return [];
    return [
      {
        op: 'kv.put',
        scope: DEBOUNCE_SCOPE,
        key: keep.key,
        value,
        expectVersion: version,
        expiresAt: runAt + life,
      },
    ];
  }

  /**
   * Moves the KV pointer of a debounce key to a newer burst, by compare-and-set from the row
   * read before; a pointer another send moved to a burst at least as new is left alone. A
   * pointer left behind (this write failed) costs later sends a step along the chain, nothing
   * more: the chain, not the pointer, decides. `expiresAt`: see {@link pointerLife}.
   */
  private async point(
    key: string,
    to: BurstPointer,
    read: KvRow | undefined,
    expiresAt: number,
  ): Promise<void> {
    const { k } = this;
    let version = read?.version ?? 0;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const [r] = await k.store.write([
        { op: 'kv.put', scope: DEBOUNCE_SCOPE, key, value: to, expectVersion: version, expiresAt },
      ]);
      if ((r as { ok: boolean }).ok) return;
      const now = await k.store.getKv(DEBOUNCE_SCOPE, key);
      if (now && (now.value as BurstPointer).gen >= to.gen) return;
      version = now?.version ?? 0;
    }
  }

  // ---- throttle ----------------------------------------------------------------------------

  private async throttle(
    req: Admit,
    t: Throttle,
    extra: ((row: InvocationRow) => WriteOp[]) | undefined,
  ): Promise<SendResult> {
    const { k } = this;
    // A repeated send (same idempotency key) answers its invocation without using a slot.
    const dedupe = dedupeKey(
      req.def.kind,
      req.def.name,
      req.spec.name,
      req.key,
      req.idempotencyKey,
    );
    if (dedupe) {
      const found = await k.store.findByDedupe(dedupe);
      if (found) return { invocationId: found.id, status: found.status, existing: true };
    }
    const kvKey = `${req.def.name}/${escape(req.spec.name)}/${t.key}`;
    const slot = await this.inOrder(`t:${kvKey}`, () => this.reserve(kvKey, t));
    const now = k.clock.now();
    if (slot.dropped) {
      throw new ThrottledError(
        `throttled: ${req.def.name}.${req.spec.name} started ${t.limit} time(s) within ${t.periodMs} ms for key "${t.key}" already; the send was dropped (the next slot frees in ${slot.at - now} ms)`,
        Math.max(0, slot.at - now),
      );
    }
    const delayMs = slot.at - now;
    const admitted = await k.admission.create(
      { ...req, delayMs: delayMs > 0 ? delayMs : undefined },
      undefined,
      extra,
      'validated',
    );
    await admitted.durable;
    return {
      invocationId: admitted.row.id,
      status: admitted.row.status,
      existing: admitted.existing,
    };
  }

  /** Reserves the next start time of a throttle key (see the class comment), by compare-and-set. */
  private async reserve(key: string, t: Throttle): Promise<{ at: number; dropped: boolean }> {
    const { k } = this;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const row = await k.store.getKv(THROTTLE_SCOPE, key);
      const now = k.clock.now();
      const starts = ((row?.value as ThrottleWindow | undefined)?.starts ?? []).slice(-t.limit);
      const last = starts[starts.length - 1];
      const earliest = Math.max(now, last ?? now);
      const at = starts.length < t.limit ? earliest : Math.max(earliest, starts[0]! + t.periodMs);
      if (at > now && t.mode === 'drop') return { at, dropped: true };
      const next: ThrottleWindow = { starts: [...starts, at].slice(-t.limit) };
      const [r] = await k.store.write([
        {
          op: 'kv.put',
          scope: THROTTLE_SCOPE,
          key,
          value: next,
          expectVersion: row?.version ?? 0,
          // Past its last start plus a period, the row decides nothing: retention deletes it.
          expiresAt: at + t.periodMs,
        },
      ]);
      if ((r as { ok: boolean }).ok) return { at, dropped: false };
    }
    throw new KeelError(
      `throttle key "${t.key}" is contended beyond ${MAX_CAS_ATTEMPTS} attempts; send again`,
      { code: 'throttle_contended', status: 503 },
    );
  }

  // ---- helpers -------------------------------------------------------------------------------

  /**
   * Runs `task` while no join of debounced invocation `id` runs in this process (and no other
   * task for it): the start timer's check-and-start (timer-firing.ts) and a send's
   * read-and-join of the same burst never interleave here. Across processes the store's
   * `scheduled` conditions decide (see `startDebounced`).
   */
  exclusive<T>(id: string, task: () => Promise<T>): Promise<T> {
    return this.inOrder(`i:${id}`, task);
  }

  private inOrder<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.queues.get(key) ?? Promise.resolve();
    const run = before.then(task, task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }
}

/** What a debounce key's KV row holds: its newest burst, and how many bursts came before. */
interface BurstPointer {
  id: string;
  gen: number;
}

/** The pointer a send read, when it joins the burst the pointer names. */
interface KeptPointer {
  key: string;
  row: KvRow;
}

/** What a throttle key's KV row holds: the last `limit` reserved start times, ascending. */
interface ThrottleWindow {
  starts: number[];
}

const DEBOUNCE_SCOPE = 'keel.debounce';
const THROTTLE_SCOPE = 'keel.throttle';
/** The dedupe-key prefix of debounced invocations (never an idempotency key's `idem:`). */
const DEBOUNCE_DEDUPE = 'debounce:';
const MAX_CHAIN_STEPS = 100;
const MAX_CAS_ATTEMPTS = 100;
/** The least time a pointer is kept past its burst's start, as a late timer's margin: an hour. */
const POINTER_SLACK_MS = 3_600_000;

/**
 * The combinations flow control refuses (400): a debounced send starts after its own period (a
 * delay would be a second clock), answers for a whole burst (an idempotency key names one
 * send), and a workflow's `run` is already one per workflow key; throttle counts starts from
 * now (a delay would start outside the window it counted in). Debounce and throttle together
 * are not supported yet.
 */
function checkCombination(req: Admit): void {
  if (req.debounce) {
    const refuse = (why: string): never => {
      throw new InvalidFlowControlError(`debounce ${why}`, 'invalid_debounce');
    };
    if (req.throttle) refuse('and throttle cannot be combined on one send: choose one');
    if (req.delayMs !== undefined)
      refuse('cannot be combined with a delay: a debounced send starts after its period');
    if (req.idempotencyKey !== undefined)
      refuse(
        'cannot be combined with an idempotency key: the answer names the burst, not the send; a repeated send only repeats its input',
      );
    if (req.def.kind === 'workflow' && req.spec.name === 'run')
      refuse(
        "cannot be used on a workflow's run: it runs once per workflow key; debounce a service or object handler that starts it",
      );
  } else if (req.throttle && req.delayMs !== undefined) {
    throw new InvalidFlowControlError(
      'throttle cannot be combined with a delay: the slot is counted from now',
      'invalid_throttle',
    );
  }
}

/** Escapes `/` and `%` so a key of parts joined by `/` is injective (as dedupe.ts does). */
function escape(part: string): string {
  return part.includes('/') || part.includes('%')
    ? part.replaceAll('%', '%25').replaceAll('/', '%2F')
    : part;
}
