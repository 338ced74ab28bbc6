import { ConflictError, NotFoundError } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import type { InvocationRow, InvocationStatus, TimerRow, WriteOp } from '../store/types.js';
import { notFound, toInfo, type InvocationInfo } from './info.js';
import { isPreconditionFailed, type Kernel } from './kernel.js';

/**
 * An operator's pause, resume, retry-now and restart of an invocation.
 *
 * Pause parks an unfinished invocation with status `paused`, its journal intact, until an
 * operator resumes (or kills) it:
 *
 * - running here: the attempt stops at its next wait or before its next step body
 *   (`Runner.pauseRequested`); a step body in flight finishes and its result is recorded, so
 *   a completed step is never lost nor run again. A handler that returns before reaching
 *   either finishes normally (the pause came too late).
 * - running in another process (shared store): the status is written here and the owner is
 *   told (`notify pause`); should the message be lost, its attempt still stops at its next
 *   suspension or retry, which the store refuses for a paused row.
 * - suspended, backing off, scheduled or pending: only the status changes. Timers still fire
 *   but find it paused: a sleep's entry is completed in the journal without running it, and a
 *   retry or delayed start finds nothing to start (their writes check the status).
 *
 * Every write checks the status it decided from (`invocation.expect`), so it never overwrites a
 * change made meanwhile (a finish, a kill, a completion); it reads again and decides anew.
 * While the pause is being written, `k.pausing` keeps a replay whose read predates it from
 * starting an attempt (`Admission.launch`).
 *
 * A paused invocation holds its object key, as one paused by an error does: the key's other
 * exclusive invocations wait until it is resumed or killed (one paused before it started
 * holds it only once it reached the head of the key's queue).
 */

const DECIDE_TRIES = 5;
/** How long a pause waits for a status write or journal load of the invocation in flight. */
const QUIET_WAIT_MS = 5_000;

const FINISHED: InvocationStatus[] = ['completed', 'failed'];

/** Pauses an unfinished invocation (see the file's comment). 404 unknown, 409 finished. */
export async function pauseInvocation(k: Kernel, id: string): Promise<InvocationInfo> {
  for (let tries = 0; tries <= DECIDE_TRIES; tries++) {
    try {
      const info = await pauseOnce(k, id);
      if (info) return info;
    } catch (err) {
      if (!isPreconditionFailed(err)) throw err;
    }
  }
  throw new ConflictError(
    `invocation ${id} kept changing while it was being paused; look at it and try again`,
    'concurrent_update',
  );
}

/** One decision; undefined: the invocation was busy changing, decide again. */
async function pauseOnce(k: Kernel, id: string): Promise<InvocationInfo | undefined> {
  const read = k.active.get(id)?.row ?? (await k.store.getInvocation(id));
  // It may have started while the row was read (its object key handed to it): then the
  // runner's row decides (see `Control.cancelOnce`).
  const runner = k.active.get(id);
  const row = runner?.row ?? read;
  if (!row) throw notFound(id);
  if (FINISHED.includes(row.status))
    throw new ConflictError(
      `invocation ${id} has already finished (${row.status}); there is nothing to pause`,
      'already_finished',
    );
  if (row.status === 'paused') return toInfo(row);
  if (!runner && (k.loading.has(id) || k.settling.has(id))) {
    // Its journal is loading or its last status write is in flight: what that leaves decides.
    await quiet(k, id);
    return undefined;
  }
  // A runner's row may still say pending while its first write (status running) is queued:
  // the store applies that write before this one.
  const expected: InvocationStatus[] = runner ? ['running', 'pending'] : [row.status];
  const ops: WriteOp[] = [
    { op: 'invocation.expect', id, status: expected },
    { op: 'invocation.update', id, set: { status: 'paused', modifiedAt: k.clock.now() } },
  ];
  const remote = !runner && k.own.elsewhere(row.owner);
  if (remote && row.status === 'running')
    ops.push({ op: 'notify', to: row.owner!, message: { type: 'pause', invocationId: id } });
  k.pausing.add(id);
  if (runner) {
    // Set before the write is issued: the attempt must not suspend or back off meanwhile.
    runner.pauseRequested = true;
    if (runner.isIdle) k.outcomes.park(runner);
  }
  try {
    await k.store.write(ops);
  } catch (err) {
    releaseMarker(k, id);
    // Not paused after all: an attempt it stopped meanwhile runs again.
    if (runner && !runner.dead) runner.pauseRequested = false;
    else if (runner) k.background(`resuming ${id}`, k.admission.resumeById(id));
    throw err;
  }
  // Not started: it leaves its object key's queue (embedded; a shared store's queue skips it).
  if (row.status === 'pending') k.own.dequeue(row);
  releaseMarker(k, id);
  k.log('info', 'paused by an operator', { invocationId: id });
  return toInfo({ ...row, status: 'paused', modifiedAt: k.clock.now() });
}

/** Drops the pause marker once no journal load that may predate the pause is in flight. */
function releaseMarker(k: Kernel, id: string): void {
  if (!k.loading.has(id)) {
    k.pausing.delete(id);
    return;
  }
  void quiet(k, id).finally(() => k.pausing.delete(id));
}

/** Waits (briefly, in real time: these are I/O round trips) until nothing is in flight for `id`. */
async function quiet(k: Kernel, id: string): Promise<void> {
  const until = Date.now() + QUIET_WAIT_MS;
  while ((k.loading.has(id) || k.settling.has(id)) && Date.now() < until)
    await new Promise((r) => setTimeout(r, 5));
}

/**
 * Another process paused an invocation this process owns (the status is durable already): its
 * attempt stops at its next wait or step, and a replay being loaded does not start.
 */
export function pausedElsewhere(k: Kernel, id: string): void {
  const runner = k.active.get(id);
  if (runner) {
    runner.pauseRequested = true;
    if (runner.isIdle) k.outcomes.park(runner);
    return;
  }
  if (k.loading.has(id)) {
    k.pausing.add(id);
    void quiet(k, id).finally(() => k.pausing.delete(id));
  }
}

/**
 * Resumes a paused invocation (paused by an operator or by an error whose cause was fixed):
 * one that had started is replayed from its journal; one paused before it started (no attempt,
 * no journal) starts as if new: `scheduled` again if its start time is still ahead, else
 * `pending`. 404 unknown, 409 not paused.
 */
export async function resumeInvocation(k: Kernel, id: string): Promise<InvocationInfo> {
  const row = await k.store.getInvocation(id);
  if (!row) throw notFound(id);
  if (row.status !== 'paused')
    throw new ConflictError(
      `invocation ${id} is ${row.status}, not paused: only paused invocations can be resumed`,
      'not_paused',
    );
  k.pausing.delete(id);
  const now = k.clock.now();
  const notStarted = row.attempt === 0 && (await k.store.getJournal(id)).length === 0;
  const expect: WriteOp = { op: 'invocation.expect', id, status: ['paused'] };
  if (notStarted) {
    const me = k.own.processId;
    const later = row.runAt !== undefined && row.runAt > now;
    // A queued handler's goes back into its queue (it never took a slot).
    const filed = later ? undefined : k.queues.refile(row);
    const status: InvocationStatus = later ? 'scheduled' : filed ? 'queued' : 'pending';
    // This process starts it (a shared store's other processes start pending rows only in
    // their sweep); nothing runs it elsewhere, as it never started.
    const fresh: InvocationRow = {
      ...row,
      status,
      error: undefined,
      modifiedAt: now,
      ...(me ? { owner: me } : {}),
    };
    const ops: WriteOp[] = [
      expect,
      {
        op: 'invocation.update',
        id,
        set: { status, error: undefined, modifiedAt: now, ...(me ? { owner: me } : {}) },
      },
    ];
    const timer: TimerRow | undefined = later
      ? { invocationId: id, index: -1, fireAt: row.runAt! }
      : undefined;
    if (timer) ops.push({ op: 'timer.put', timer });
    if (filed) ops.push(filed);
    await k.store.write(ops);
    if (timer) k.timers.add(timer);
    else if (filed) k.queues.poke(filed.queue);
    else k.own.enqueue(fresh);
    return toInfo(fresh);
  }
  const resumed: InvocationRow = { ...row, status: 'running', error: undefined, modifiedAt: now };
  const ops: WriteOp[] = [
    expect,
    { op: 'invocation.update', id, set: { status: 'running', error: undefined, modifiedAt: now } },
  ];
  const remote = k.own.elsewhere(row.owner);
  // Its owner replays it (a lost message leaves it to the owner's sweep of running rows).
  if (remote)
    ops.push({ op: 'notify', to: row.owner!, message: { type: 'wake', invocationId: id } });
  await k.store.write(ops);
  if (!remote) k.admission.resume(resumed);
  return toInfo(resumed);
}

/**
 * Runs a backing-off or scheduled invocation now: the retry or start its timer would make, made
 * now, with the same status checks (a concurrent cancel or kill is never overwritten). On a
 * shared store this process takes it over (nothing runs it while it waits). 404 unknown, 409
 * in any other status.
 */
export async function retryNow(k: Kernel, id: string): Promise<InvocationInfo> {
  const row = await k.store.getInvocation(id);
  if (!row) throw notFound(id);
  if (row.status !== 'backing-off' && row.status !== 'scheduled')
    throw new ConflictError(
      `invocation ${id} is ${row.status}: only a backing-off or scheduled invocation can be retried now`,
      'not_waiting',
    );
  const starts = row.status === 'scheduled';
  // A delayed send to a queued handler goes into its queue now, as its timer would.
  const filed = starts ? k.queues.refile(row) : undefined;
  const status: InvocationStatus = filed ? 'queued' : starts ? 'pending' : 'running';
  const now = k.clock.now();
  const me = k.own.processId;
  const [, r] = await k.store.write([
    { op: 'timer.delete', invocationId: id, index: -1 },
    {
      op: 'invocation.update',
      id,
      set: { status, modifiedAt: now, ...(me ? { owner: me } : {}) },
      ifStatus: row.status,
    },
    ...(filed ? [filed] : []),
  ]);
  if (!(r as { updated: boolean }).updated) {
    const fresh = await k.store.getInvocation(id);
    throw new ConflictError(
      `invocation ${id} changed meanwhile (it is ${fresh?.status ?? 'gone'}); look at it again`,
      'not_waiting',
    );
  }
  // The old timer may still be held in memory: firing later, it finds nothing to start (the
  // status check), or at worst starts a later backoff of the same invocation early.
  k.timers.done(id, -1);
  const fresh: InvocationRow = { ...row, status, modifiedAt: now, ...(me ? { owner: me } : {}) };
  if (filed) k.queues.poke(filed.queue);
  else if (starts) k.own.enqueue(fresh);
  else k.admission.resume(fresh);
  return toInfo(fresh);
}

/**
 * Starts a new invocation with the target, key and input of `id` (any status), and answers
 * it. The new one has no caller and no idempotency key (a restart is a new request: the old
 * key would only find the old invocation).
 *
 * A workflow's `run` runs once per workflow key: a finished run is restarted by giving its key
 * to the new run (the old invocation stays readable by its id until its retention ends; the
 * key's state and durable promises, which belong to the key, are kept); an unfinished one is
 * refused (409 `workflow_running`: cancel or kill it first).
 *
 * `prefix`: the journal entries the new invocation starts with, checked by restart.ts (a
 * restart from a journal prefix); they are written with its insert.
 */
export async function restartInvocation(
  k: Kernel,
  id: string,
  prefix?: ReadonlyMap<number, JournalEntry>,
): Promise<InvocationInfo> {
  const row = await k.store.getInvocation(id);
  if (!row) throw notFound(id);
  let target;
  try {
    target = k.admission.resolve(row.service, row.handler, row.key);
  } catch (err) {
    // A handler that is gone cannot run again, whatever its old invocation looked like.
    throw new NotFoundError(`invocation ${id} cannot be restarted: ${(err as Error).message}`);
  }
  if (target.def.kind === 'workflow' && row.handler === 'run' && row.dedupe !== undefined) {
    if (!FINISHED.includes(row.status))
      throw new ConflictError(
        `workflow ${row.service}/${row.key} is ${row.status}: a workflow runs once per key, so cancel or kill invocation ${id} before restarting it`,
        'workflow_running',
      );
    await k.store.write([
      { op: 'invocation.expect', id, status: FINISHED },
      { op: 'invocation.update', id, set: { dedupe: undefined } },
    ]);
  }
  const sent = await k.send({ ...target, input: row.input, ...(prefix ? { prefix } : {}) });
  if (sent.existing)
    throw new ConflictError(
      `workflow ${row.service}/${row.key} was started again meanwhile (invocation ${sent.invocationId})`,
      'workflow_running',
    );
  const fresh = await k.store.getInvocation(sent.invocationId);
  if (!fresh) throw notFound(sent.invocationId);
  const from = prefix ? ` from journal entry ${prefix.size}` : '';
  k.log('info', `restarted by an operator as ${sent.invocationId}${from}`, { invocationId: id });
  return toInfo(fresh);
}
