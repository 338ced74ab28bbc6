import {
  ConflictError,
  errorMessage,
  KeelError,
  NotFoundError,
  toErrorInfo,
  type ErrorInfo,
} from '../core/errors.js';
import { parseAwakeableId, type JournalEntry } from '../core/journal.js';
import type { Outcome as EntryOutcome } from '../core/replay.js';
import type { WriteOp } from '../store/types.js';
import { awakeableIdFor } from './ids.js';
import { fieldsOf } from './info.js';
import { isUnavailable, type Kernel } from './kernel.js';
import type { Runner } from './runner.js';

/**
 * The key-value scope of awakeable lookup records: an awakeable id (the key) leads to the
 * invocation and journal entry that wait for it. Expires with the invocation's retention.
 */
export const AWAKEABLE_SCOPE = 'keel.awakeable';

/** Where an awakeable's completion goes. */
export interface AwakeableRef {
  invocationId: string;
  index: number;
}

/**
 * Completing what handlers wait for: a journal entry (a sleep that came due, a call that
 * answered, a cancellation), an awakeable (by its id, from outside or from another handler), a
 * durable promise. A completion is durable before it is handed to the waiting runner, or, if
 * the invocation is suspended, before the invocation is resumed to replay it.
 */
export class Completions {
  /**
   * Awakeable ids whose entry and lookup record are not durable yet, so a completion that
   * arrives at once (the id handed out from the same attempt) finds them.
   */
  private readonly newAwakeables = new Map<string, AwakeableRef>();
  /** Promise completions in flight, so two completions of one promise cannot both succeed. */
  private readonly completingPromises = new Set<string>();

  constructor(private readonly k: Kernel) {}

  /**
   * Durably completes a waiting journal entry of invocation `id`, then hands the completion to
   * its runner, or resumes the invocation if it was suspended. Resolves with whether this
   * write completed it (false: it was complete already).
   */
  completeEntry(
    id: string,
    index: number,
    entry: JournalEntry,
    extraOps: WriteOp[] = [],
  ): Promise<boolean> {
    const { k } = this;
    const before = k.active.get(id);
    if (before) before.expecting++;
    const me = k.own.processId;
    const complete: WriteOp = {
      op: 'journal.complete',
      invocationId: id,
      index,
      entry,
      ...(me ? { notifyFrom: me } : {}),
    };
    return k.store.write([complete, ...extraOps]).then(
      (results) => {
        const r = results[0] as
          { completed: boolean; resumed: boolean; owner?: string } | undefined;
        // An invocation owned by another process was woken by the store.
        if (r?.completed && !k.own.elsewhere(r.owner))
          this.deliver(id, index, entry, r.resumed || before !== undefined);
        else if (r && !r.completed) this.redeliver(id, index);
        if (before) before.doneExpecting();
        return r?.completed === true;
      },
      (err: unknown) => {
        if (before) before.doneExpecting();
        k.log('error', `could not complete entry ${index} of ${id}: ${errorMessage(err)}`);
        throw err;
      },
    );
  }

  /**
   * The entry was complete already. If a runner here still waits for it, the completing write
   * was this process's own whose answer an outage lost (it committed, then the connection
   * dropped; the retry finds it done): hand the runner the stored completion, which nothing
   * else would. Rare, so reading the journal is fine.
   */
  private redeliver(id: string, index: number): void {
    const { k } = this;
    const runner = k.active.get(id);
    if (!runner?.waitingIndexes().includes(index)) return;
    k.background(
      `redelivering entry ${index} of ${id}`,
      k.store.getJournal(id).then((journal) => {
        const stored = journal.find(([i]) => i === index)?.[1];
        if (stored?.done && k.active.get(id) === runner) runner.deliver(index, stored);
      }),
    );
  }

  /** Hands a durable completion to its runner, its loading replay, or resumes the invocation. */
  deliver(id: string, index: number, entry: JournalEntry, mayNeedResume: boolean): void {
    const { k } = this;
    const runner = k.active.get(id);
    const loading = k.loading.get(id);
    if (runner) runner.deliver(index, entry);
    else if (loading) loading.pending.push([index, entry]);
    else if (mayNeedResume) k.background(`resuming ${id}`, k.admission.resumeById(id));
  }

  // ---- awakeables --------------------------------------------------------------------------

  /** The id of an invocation's awakeable at `index`: the same in every attempt. */
  awakeableIdFor(invocationId: string, index: number): string {
    if (!this.k.awakeableSecret)
      throw new KeelError(
        'cannot create an awakeable before the engine has started: await engine.start() first',
        { code: 'engine_not_started', status: 503 },
      );
    return awakeableIdFor(this.k.awakeableSecret, invocationId, index);
  }

  /**
   * Records an awakeable with the lookup record that leads its id to the entry, in one write;
   * until that is durable the id is found in memory (by this process only). A retried attempt
   * records the same id again (ids are derived from the entry), so a lookup lost with a crash
   * is written anew. Resolves (never rejects) once the write has settled.
   */
  createAwakeable(runner: Runner, index: number, entry: JournalEntry): Promise<void> {
    const ops: WriteOp[] = [{ op: 'journal.put', invocationId: runner.row.id, index, entry }];
    const id = entry.name;
    // Its own object: a retry re-creating the same id while an earlier write is still pending
    // replaces it, and only the last write to finish lets the id go.
    const ref: AwakeableRef | undefined =
      id !== '' ? { invocationId: runner.row.id, index } : undefined;
    if (ref) {
      this.newAwakeables.set(id, ref);
      ops.push({ op: 'kv.put', scope: AWAKEABLE_SCOPE, key: id, value: ref });
    }
    // Settles once the write did (a failure stops the attempt first, see `RunnerHost.write`):
    // step bodies wait for it (see `Runner.awakeablesDurable`).
    return this.k.host
      .write(runner, ops)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (ref && this.newAwakeables.get(id) === ref) this.newAwakeables.delete(id);
      });
  }

  /**
   * Completes an awakeable from outside (the ingress, `Engine.resolveAwakeable`): 404 for an
   * unknown id, 409 when it was completed already or its invocation has finished.
   */
  async completeAwakeableById(id: string, result: EntryOutcome): Promise<void> {
    const { invocationId, index, name } = await this.checkAwakeable(id);
    const entry: JournalEntry = {
      kind: 'awakeable',
      name,
      done: true,
      ...result,
      completedAt: this.k.clock.now(),
      completedBy: 'awakeable',
    };
    const completed = await this.completeEntry(invocationId, index, entry);
    if (!completed)
      throw new ConflictError(`awakeable "${id}" was already completed`, 'already_completed');
  }

  /** A handler completes an awakeable: journaled in the same write as the completion. */
  completeAwakeable(
    runner: Runner,
    index: number,
    id: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    return this.k.host.failsAttempt(runner, this.completeAwakeableNow(runner, index, id, result));
  }

  private async completeAwakeableNow(
    runner: Runner,
    index: number,
    id: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    const { k } = this;
    const own: JournalEntry = { kind: 'completeAwakeable', name: id, done: true };
    let target: AwakeableRef & { name: string };
    try {
      target = await this.checkAwakeable(id);
    } catch (err) {
      // An outage says nothing about the awakeable: not journaled as the completion's failure.
      if (isUnavailable(err)) throw err;
      const failed = { ...own, error: toErrorInfo(err) };
      await k.store.write([
        { op: 'journal.put', invocationId: runner.row.id, index, entry: failed },
      ]);
      return failed;
    }
    // The attempt and the completion are one write: exactly once, even across a crash.
    const entry: JournalEntry = {
      kind: 'awakeable',
      name: target.name,
      done: true,
      ...result,
      completedAt: k.clock.now(),
      completedBy: `awakeable (handler ${runner.row.id})`,
    };
    const completed = await this.completeEntry(target.invocationId, target.index, entry, [
      { op: 'journal.put', invocationId: runner.row.id, index, entry: own },
    ]);
    if (completed) return own;
    const failed = {
      ...own,
      error: toErrorInfo(
        new ConflictError(`awakeable "${id}" was already completed`, 'already_completed'),
      ),
    };
    await k.store.write([{ op: 'journal.put', invocationId: runner.row.id, index, entry: failed }]);
    return failed;
  }

  /** Where an awakeable id leads: its lookup record (see {@link createAwakeable}). */
  private async findAwakeable(id: string): Promise<AwakeableRef | undefined> {
    const fresh = this.newAwakeables.get(id);
    if (fresh) return fresh;
    const value = (await this.k.store.getKv(AWAKEABLE_SCOPE, id))?.value as
      AwakeableRef | undefined;
    return value && typeof value.invocationId === 'string' && Number.isInteger(value.index)
      ? { invocationId: value.invocationId, index: value.index }
      : undefined;
  }

  /**
   * Checks that an awakeable can be completed: 404 for an unknown or malformed id, 409 when it
   * was completed already or its invocation has finished. Returns the entry's name (the id, or
   * empty for a legacy entry), which its completion must keep.
   */
  private async checkAwakeable(id: string): Promise<AwakeableRef & { name: string }> {
    const { k } = this;
    const parsed = parseAwakeableId(id);
    if (!parsed)
      throw new NotFoundError(
        `"${id}" is not an awakeable id (they look like awk_<26 characters>)`,
      );
    const unknown = new NotFoundError(
      `no awakeable "${id}": it never existed or its invocation's retention ended`,
    );
    const ref = 'random' in parsed ? await this.findAwakeable(id) : parsed;
    if (!ref) throw unknown;
    // A random id is the entry's name; a legacy id is accepted only for a legacy entry (no
    // name), or an id made from an invocation id and an index would open random ones too.
    const name = 'random' in parsed ? id : '';
    const row = await k.store.getInvocation(ref.invocationId);
    // Not in the store yet but running here: an invocation starts before its insert commits,
    // and its first entry may be this awakeable, whose id it already handed to a call or send.
    if (!row && !k.active.has(ref.invocationId)) throw unknown;
    if (row?.status === 'completed' || row?.status === 'failed') {
      throw new ConflictError(
        `awakeable "${id}" cannot be completed: the invocation that created it has finished`,
        'already_finished',
      );
    }
    const entry = (await k.store.getJournal(ref.invocationId)).find(([i]) => i === ref.index)?.[1];
    if (!entry) {
      // Created by a runner whose journal write is not flushed yet.
      const fresh = this.newAwakeables.get(id);
      if (fresh && k.active.get(ref.invocationId)?.awakeables.has(ref.index))
        return { ...fresh, name };
      throw unknown;
    }
    if (entry.kind !== 'awakeable' || entry.name !== name) throw unknown;
    if (entry.done)
      throw new ConflictError(`awakeable "${id}" was already completed`, 'already_completed');
    return { ...ref, name };
  }

  // ---- durable promises --------------------------------------------------------------------

  /** Registers the wait for a workflow's durable promise (or takes its value if it is done). */
  awaitPromise(runner: Runner, index: number, entry: JournalEntry): void {
    const { k } = this;
    const { service, key, id } = runner.row;
    runner.expecting++;
    // A failed registration fails the attempt: nothing would ever wake it.
    k.host
      .write(runner, [
        { op: 'promise.await', service, key, name: entry.name, invocationId: id, index, entry },
      ])
      .then(
        (results) => {
          runner.doneExpecting();
          const r = results[0] as { done: boolean; value?: unknown; error?: ErrorInfo };
          if (r.done)
            runner.deliver(index, {
              ...entry,
              done: true,
              ...(r.error ? { error: r.error } : { value: r.value }),
            });
          else if (runner.isIdle && !runner.dead) k.outcomes.idle(runner);
        },
        (err: unknown) => {
          runner.doneExpecting();
          k.log(
            'error',
            `could not wait for promise "${entry.name}": ${errorMessage(err)}`,
            fieldsOf(runner.row),
          );
        },
      );
  }

  peekPromise(
    runner: Runner,
    name: string,
  ): Promise<{ done: boolean; value?: unknown; error?: ErrorInfo } | undefined> {
    return this.k.store.getPromise(runner.row.service, runner.row.key, name);
  }

  /** A handler completes a durable promise of its workflow: once, whoever tries. */
  completePromise(
    runner: Runner,
    index: number,
    name: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    return this.k.host.failsAttempt(runner, this.completePromiseNow(runner, index, name, result));
  }

  private async completePromiseNow(
    runner: Runner,
    index: number,
    name: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    const { k } = this;
    const { service, key, id } = runner.row;
    const own: JournalEntry = { kind: 'completePromise', name, done: true };
    const lock = `${service}\u0000${key}\u0000${name}`;
    const conflict = (): JournalEntry => ({
      ...own,
      error: toErrorInfo(
        new ConflictError(
          `promise "${name}" of ${service}/${key} was already completed`,
          'promise_already_completed',
        ),
      ),
    });
    const existing = this.completingPromises.has(lock)
      ? { done: true }
      : await k.store.getPromise(service, key, name);
    if (existing?.done || this.completingPromises.has(lock)) {
      const failed = conflict();
      await k.store.write([{ op: 'journal.put', invocationId: id, index, entry: failed }]);
      return failed;
    }
    this.completingPromises.add(lock);
    try {
      const me = k.own.processId;
      const results = await k.store.write([
        {
          op: 'promise.complete',
          service,
          key,
          name,
          ...result,
          ...(me ? { notifyFrom: me } : {}),
        },
        { op: 'journal.put', invocationId: id, index, entry: own },
      ]);
      const r = results[0] as {
        completed: boolean;
        waiters: Array<{ invocationId: string; index: number; resumed: boolean; owner?: string }>;
      };
      const completion: JournalEntry = { kind: 'promise', name, done: true, ...result };
      for (const w of r.waiters) {
        // Waiters owned by other processes were woken by the store.
        if (!k.own.elsewhere(w.owner)) this.deliver(w.invocationId, w.index, completion, w.resumed);
      }
      return own;
    } finally {
      this.completingPromises.delete(lock);
    }
  }
}
