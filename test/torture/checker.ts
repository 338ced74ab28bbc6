/**
 * The invariants, checked once the run is quiet (no more faults, every process serving):
 * - every acknowledged invocation exists (`lost` otherwise) and finishes (`stuck` otherwise),
 *   with the outcome and output it must have;
 * - nothing else is left waiting: no invocation pending, running, suspended... after quiescence;
 * - counter totals are exact: acknowledged adds <= total <= acknowledged + unknown-fate adds;
 * - no completed step ran twice (from the execution log, see `analyzeLog`);
 * - no two executions of one object key overlapped, except zombie overlaps proven harmless by
 *   the log (see `analyzeLog`), which are counted apart;
 * - every acknowledged declarative flow run's state (`GET /flows/runs/{id}`) agrees with its
 *   result, and the execution log shows its steps as its definition takes them (dflow.ts);
 * - the flow-control queue's limits held: never more than 2 invocations of `Queued.work` inside
 *   their slot at once, never 2 of one queue key (see `analyzeLog`);
 * - (the runner adds: no process exited on its own).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Cluster } from './cluster.js';
import { request, sleep } from './http.js';
import { QUEUE, stepId, type LogLine } from './program.js';
import type { Ledger, Problem } from './workload.js';

const FINISHED = new Set(['completed', 'failed']);
const UNFINISHED = [
  'queued',
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
];

export interface CheckResult {
  checked: number;
  lost: number;
  stuck: number;
  strays: number;
  problems: Problem[];
}

/** Polls every acknowledged invocation until it finishes or `quietMs` passes, then judges. */
export async function checkInvocations(
  cluster: Cluster,
  ledger: Ledger,
  quietMs: number,
  /** The run was aborted: stop waiting. */
  abandoned: () => boolean = () => false,
): Promise<CheckResult> {
  const problems: Problem[] = [];
  const pick = (): number => Math.floor(Math.random() * 1000);
  const deadline = Date.now() + quietMs;
  const waiting = new Map([...ledger.acked.entries()]);
  const lost = new Set<string>();
  const statuses = new Map<string, { status: string; error?: { code: string; message: string } }>();
  let strays: Array<{ id: string; target: string; status: string }> = [];
  for (;;) {
    for (const batch of chunks([...waiting.keys()], 16)) {
      await Promise.all(
        batch.map(async (id) => {
          const api = ledger.acked.get(id)!.api;
          const r = await request(cluster, pick, 'GET', `/invocations/${id}`, api ? { api } : {});
          if (r.kind !== 'ok') return;
          if (r.status === 404) {
            lost.add(id);
            waiting.delete(id);
          } else if (r.status === 200) {
            statuses.set(id, r.json);
            if (FINISHED.has(r.json.status as string)) waiting.delete(id);
          }
        }),
      );
    }
    strays = await unfinished(cluster, pick);
    if ((waiting.size === 0 && strays.length === 0) || Date.now() > deadline || abandoned()) break;
    await sleep(500);
  }
  for (const id of lost) {
    problems.push({
      invariant: 'acknowledged invocations exist',
      detail: `${ledger.acked.get(id)!.op}: ${id} was acknowledged, now 404`,
    });
  }
  for (const id of waiting.keys()) {
    problems.push({
      invariant: 'acknowledged invocations finish',
      detail: `${ledger.acked.get(id)!.op}: ${id} is still ${statuses.get(id)?.status ?? 'unreadable'} after the quiet period${describeError(statuses.get(id)?.error)}`,
    });
  }
  const ackedIds = new Set(ledger.acked.keys());
  for (const s of strays.filter((s) => !ackedIds.has(s.id))) {
    problems.push({
      invariant: 'nothing stuck',
      detail: `${s.target} ${s.id} is still ${s.status} after the quiet period`,
    });
  }
  // Outcomes and outputs of what finished.
  for (const [id, e] of ledger.acked) {
    const s = statuses.get(id);
    if (!s || !FINISHED.has(s.status)) continue;
    if (e.must === 'complete' && s.status !== 'completed') {
      problems.push({
        invariant: 'acknowledged invocations complete',
        detail: `${e.op}: ${id} ${s.status}${describeError(s.error)}`,
      });
      continue;
    }
    if (e.output === undefined || s.status !== 'completed') continue;
    const r = await request(cluster, pick, 'GET', `/invocations/${id}/output`);
    if (r.kind === 'ok' && r.status === 200 && !isDeepStrictEqual(r.json, e.output)) {
      problems.push({
        invariant: 'results are right',
        detail: `${e.op}: ${id} output ${JSON.stringify(r.json)}, expected ${JSON.stringify(e.output)}`,
      });
    }
  }
  return {
    checked: ledger.acked.size,
    lost: lost.size,
    stuck: waiting.size + strays.filter((s) => !ackedIds.has(s.id)).length,
    strays: strays.length,
    problems,
  };
}

/**
 * The queues' own figures once quiet (admin `GET /queues`): nothing waiting, nothing holding a
 * slot. "Nothing stuck" already finds a `queued` invocation; this also finds a slot the store
 * still counts for an invocation that finished (which would shrink the queue for good).
 */
export async function checkQueues(cluster: Cluster): Promise<Problem[]> {
  for (let i = 0; i < 20; i++) {
    const r = await request(cluster, () => i, 'GET', '/queues', { api: 'admin' });
    if (r.kind !== 'ok' || r.status !== 200) {
      await sleep(250);
      continue;
    }
    return (r.json.queues as Array<{ name: string; waiting: number; running: number }>)
      .filter((q) => q.waiting !== 0 || q.running !== 0)
      .map((q) => ({
        invariant: 'queues drain',
        detail: `queue ${q.name}: ${q.waiting} waiting, ${q.running} running after the quiet period`,
      }));
  }
  return [{ invariant: 'queues drain', detail: 'GET /queues never answered 200' }];
}

/**
 * Each acknowledged declarative flow run once quiet (docs/flows.md): asked again with its key
 * (`POST /flows/{name}/run`, as a client's late retry), it answers the very result it answered
 * first (the same invocation, nothing run again: a lost run would start anew with another
 * invocation id and timing); its state (`GET /flows/runs/{runId}`) has its result's status and
 * compensations and failed steps (the state is written by the same journaled run). A run
 * answered 409 `cancelled` answers that again, and its invocation failed with `cancelled`; its
 * state is kept on the run for the log check (`checkFlowEffects`).
 */
export async function checkFlowRuns(cluster: Cluster, ledger: Ledger): Promise<Problem[]> {
  const problems: Problem[] = [];
  const ask = async (method: string, path: string, options = {}): Promise<any> => {
    for (let i = 0; i < 20; i++) {
      const r = await request(cluster, () => i, method, path, { timeoutMs: 30_000, ...options });
      if (r.kind === 'ok' && r.status < 500) return { status: r.status, json: r.json };
      await sleep(250);
    }
    return undefined;
  };
  for (const run of ledger.dflows.filter((r) => r.acked)) {
    const { runId, status, compensated, errors } = run.expect.result;
    const again = await ask('POST', run.request.path, {
      body: run.request.body,
      headers: run.request.headers,
    });
    if (again?.status !== (run.cancelled ? 409 : 200) || !isDeepStrictEqual(again.json, run.first))
      problems.push({
        invariant: 'a flow run key answers one run',
        detail: `${run.op}: asked again once quiet, answered ${JSON.stringify(again)}, first ${JSON.stringify(run.first)}`,
      });
    const read = await ask('GET', `/flows/runs/${encodeURIComponent(runId)}`);
    if (read?.status === 200) run.state = read.json;
    if (run.cancelled) {
      // Its state is judged against the log (checkFlowEffects); its invocation here.
      const inv = run.invocationId
        ? await ask('GET', `/invocations/${run.invocationId}`, { api: 'admin' })
        : undefined;
      if (inv?.json?.status !== 'failed' || inv.json.error?.code !== 'cancelled')
        problems.push({
          invariant: 'a cancelled flow run stops and compensates',
          detail: `${run.op}: answered 409 cancelled, but its invocation ${run.invocationId ?? '(id unknown)'} is ${JSON.stringify(inv?.json)}`,
        });
      continue;
    }
    // The steps that failed, in order: `continue` ones as they went, then the one that stopped it.
    const failed = errors.filter((e) => !e.compensation).map((e) => e.step);
    const state = run.state;
    if (
      state?.status !== status ||
      !isDeepStrictEqual(state?.compensated, compensated) ||
      !isDeepStrictEqual(state?.failed, failed)
    )
      problems.push({
        invariant: 'flow run state agrees with its result',
        detail: `${run.op}: GET /flows/runs/${runId} answered ${JSON.stringify(read)}, expected status ${status}, compensated ${JSON.stringify(compensated)}, failed ${JSON.stringify(failed)}`,
      });
  }
  return problems;
}

/** Counter totals against the ledger. */
export async function checkCounters(cluster: Cluster, ledger: Ledger): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const [key, { exact, maybe }] of ledger.counters) {
    let total: unknown;
    for (let i = 0; i < 20 && total === undefined; i++) {
      const r = await request(cluster, () => i, 'POST', `/Counter/${encodeURIComponent(key)}/get`, {
        body: null,
      });
      if (r.kind === 'ok' && r.status === 200) total = r.json;
      else await sleep(250);
    }
    if (typeof total !== 'number' || total < exact || total > exact + maybe) {
      problems.push({
        invariant: 'object totals exact',
        detail: `Counter ${key} = ${JSON.stringify(total)}, acknowledged adds sum to ${exact}${maybe ? ` (+ up to ${maybe} of unknown fate)` : ''}`,
      });
    }
  }
  return problems;
}

/**
 * The event-sourced twin of each counter (`Tally`, test/fixtures/torture-app.ts): its stream is
 * gap-free and holds each add once (no append lost to a crash or made twice by a replay), its
 * total is within the counter's bounds, and its `totals` projection, once caught up, applied
 * every event exactly once (its view equals the fold of the stream).
 */
export async function checkTallies(cluster: Cluster, ledger: Ledger): Promise<Problem[]> {
  const problems: Problem[] = [];
  const ask = async (path: string, body: unknown): Promise<any> => {
    for (let i = 0; i < 20; i++) {
      const r = await request(cluster, () => i, 'POST', path, { body });
      if (r.kind === 'ok' && r.status === 200) return r.json;
      await sleep(250);
    }
    return undefined;
  };
  for (const [key, { exact, maybe }] of ledger.counters) {
    const k = encodeURIComponent(key);
    const fail = (detail: string) =>
      problems.push({ invariant: 'event-sourced totals exact', detail: `Tally ${key}: ${detail}` });
    // The whole stream, a page (at most 1,000 events) at a time: a long run appends thousands.
    const events: Array<{ seq: number; data: { tag: string; n: number } }> = [];
    let from: number | undefined = 1;
    let unreadable: unknown;
    while (from !== undefined) {
      const page = await ask(`/Tally/${k}/events`, { from, limit: 1000 });
      if (!page || !Array.isArray(page.events)) {
        unreadable = page ?? null;
        break;
      }
      events.push(...(page.events as typeof events));
      from = typeof page.next === 'number' && page.events.length > 0 ? page.next : undefined;
    }
    if (unreadable !== undefined) {
      fail(`its events could not be read (${JSON.stringify(unreadable)})`);
      continue;
    }
    const wrong = events.findIndex((e, i) => e.seq !== i + 1);
    if (wrong >= 0)
      fail(
        `its stream is not 1..${events.length}: event ${wrong + 1} has seq ${events[wrong]!.seq} ` +
          `(seqs around it: ${events
            .slice(Math.max(0, wrong - 3), wrong + 4)
            .map((e) => e.seq)
            .join(',')})`,
      );
    const tags = events.map((e) => e.data.tag);
    const twice = tags.filter((t, i) => tags.indexOf(t) !== i);
    if (twice.length) fail(`adds appended twice: ${[...new Set(twice)].join(', ')}`);
    const total = events.reduce((s, e) => s + e.data.n, 0);
    if (total < exact || total > exact + maybe) {
      fail(
        `events sum to ${total}, acknowledged adds to ${exact}${maybe ? ` (+ up to ${maybe} of unknown fate)` : ''}`,
      );
    }
    const state = await ask(`/Tally/${k}/state`, null);
    if (state?.state?.total !== total || state?.version !== events.length) {
      fail(
        `state ${JSON.stringify(state)} is not the fold of its ${events.length} events (${total})`,
      );
    }
    let view: any;
    for (let i = 0; i < 40; i++) {
      view = (await ask('/TallyProjections/totals/view', key))?.view;
      if (view?.lastSeq === events.length) break;
      await sleep(250);
    }
    if (view?.total !== total || view?.events !== events.length) {
      fail(
        `projection ${JSON.stringify(view)} is not its ${events.length} events applied once (${total})`,
      );
    }
  }
  return problems;
}

export interface LogAnalysis {
  executions: number;
  steps: number;
  /** Executions beyond the first of a step (allowed only when a crash cut the previous one). */
  reruns: number;
  /** Re-runs of a step whose result had been observed (journaled) before. */
  completedReruns: number;
  /** Re-runs that no crash or database outage explains. */
  unexplainedReruns: number;
  /** Exclusivity violations. */
  overlaps: number;
  /**
   * Overlaps of an invocation with itself across processes where the log proves the older
   * side a fenced zombie whose execution committed nothing (see `analyzeLog`): not violations.
   */
  zombieOverlaps: number;
  /** What each zombie overlap was, for the report. */
  zombies: string[];
  /** Invocations of the queued handler that entered their slot (distinct tags). */
  queueAdmissions: number;
  /** Most invocations inside the queue at once, and most of one key. */
  queuePeak: { total: number; perKey: number };
  /**
   * Attempts that entered a slot their invocation already held: after the previous attempt's
   * process was killed, died or fenced, and otherwise (a suspension, a retry).
   */
  queueReentries: { afterCut: number; other: number };
  /** Entries into the queue beyond its limits (`QUEUE` of program.ts). */
  queueViolations: number;
  problems: Problem[];
}

/** An `enter` on a key another execution held (its process not killed since). */
interface Overlap {
  key: string;
  holder: { pid: number; tag: string; seq: number };
  enterer: { pid: number; tag: string; seq: number };
}

/**
 * Reads the execution log (in file order = the global order of events):
 * - a step executed again after the handler observed its result ran twice although completed;
 * - a step executed again with no kill of the process that ran it before (nor a database
 *   outage, nor that process being fenced off after losing its lease, nor a failed journal
 *   write of that process: `writefail`, its attempt abandoned and retried) in between ran
 *   twice with nothing in flight to excuse it. A failed write is logged where the process
 *   noticed it, which after `pg_terminate_backend` can be well after the fault's `outage end`
 *   (a terminated connection fails at its next query);
 * - an `enter` on a key while another invocation holds it (its process not killed since) is
 *   an exclusivity violation, with one exception, proven from the log: a zombie overlap.
 *
 * Zombie overlaps. Exclusivity across processes rests on leases: a process that stalls past
 * its lease is reaped and its invocation adopted while its own code may still be running
 * (a step body cannot be interrupted). Its writes are refused from the reap on, so nothing it
 * journals can overlap; only un-journaled code can. An overlap is counted as a zombie overlap,
 * not a violation, only when the log shows all of:
 * - the same invocation (the same tag) entered again in another process (an adoption), never
 *   a different invocation;
 * - the holder's process logged a fence or lease loss (`fenced`) after it entered and before
 *   it did anything else after the adopter entered (no `start`, `enter`, `ack` or `awk` line
 *   of it in between): it stopped at the fence, not after running on;
 * - the holder never observed its step's result (no `ack` of the invocation's step by its
 *   process after it entered) and the adopter executed that step's body itself: the holder's
 *   step result was never journaled, so its execution committed nothing.
 * - or no concurrent execution at all: the holder had no step body of the invocation in flight
 *   when the adopter entered, observed no step result, did nothing after the adopter entered
 *   but fence itself (a stalled process waking up), and logged nothing of the invocation after
 *   (a dropped runner never logs its `exit`).
 * Anything short of that evidence stays a violation.
 *
 * Queue limits. `Queued.work` runs only once its queue admitted it, and its invocation holds
 * the slot until it finishes, suspensions and crashes included (docs/flow-control.md: the
 * store counts an admitted invocation until its status is completed or failed). So the unit
 * here is the invocation (its tag), not the attempt. An attempt cut by a kill, a fence or a
 * suspension logs no `qexit`, but that does not free the slot: its invocation stays unfinished
 * and its next attempt (a resumption, a recovery, an adoption) enters again under the same tag.
 * Likewise a `qexit` followed by another `qenter` of the tag (a kill between the exit and the
 * commit that would have finished it) did not free it: a finished invocation never runs again.
 * So an invocation is inside from its first `qenter` to the first `qexit` after its last
 * `qenter` (for good if there is none), and a kill removes no holder here, unlike the object-key
 * check (which judges overlapping executions, not slots): a new invocation entering while a
 * killed holder's invocation is unfinished is over the limit as much as a live one. Each
 * `qexit` precedes the commit that finishes its invocation, so this span lies inside the
 * store's (a zombie's late `qexit` comes after that first one and is not used). What the log
 * cannot tell from a holder: an attempt of a fenced zombie that enters after another process
 * finished its invocation; the object-key check would flag the same on `Counter`, and each
 * violation names the holders' pids and log positions so a reader can judge it. The first
 * `qenter` of an invocation with more inside than `QUEUE.concurrency`, or more of its key than
 * `QUEUE.perKey`, is a violation.
 */
export function analyzeLog(lines: LogLine[]): LogAnalysis {
  const problems: Problem[] = [];
  const crashes: Array<{ seq: number; pid: number; fenced?: boolean }> = [];
  const outages: Array<{ from: number; to: number }> = [];
  const writeFails: LogLine[] = [];
  const starts = new Map<string, LogLine[]>();
  const firstAck = new Map<string, number>();
  const ends = new Map<string, LogLine[]>();
  const holders = new Map<string, { pid: number; tag: string; seq: number }>();
  const candidates: Overlap[] = [];
  const queue = new QueueSlots();
  let openOutage: number | undefined;
  for (const l of lines) {
    switch (l.kind) {
      case 'qenter':
        queue.enter(l);
        break;
      case 'qexit':
        queue.exit(l);
        break;
      case 'start': {
        const id = l.args[0]!;
        const list = starts.get(id) ?? [];
        list.push(l);
        starts.set(id, list);
        break;
      }
      case 'ack':
        if (!firstAck.has(l.args[0]!)) firstAck.set(l.args[0]!, l.seq);
        break;
      case 'end': {
        const id = l.args[0]!;
        const list = ends.get(id) ?? [];
        list.push(l);
        ends.set(id, list);
        break;
      }
      case 'writefail':
        writeFails.push(l);
        break;
      case 'fenced':
        // Logged when the fenced process's next write is refused, which can be after the
        // taker-over re-ran its step: it excuses re-runs on either side of it.
        crashes.push({ seq: l.seq, pid: l.pid, fenced: true });
        queue.cut(l, l.pid, 'fenced');
        break;
      case 'kill':
      case 'died': {
        const pid = Number(l.args[0]);
        crashes.push({ seq: l.seq, pid });
        queue.cut(l, pid, l.kind === 'kill' ? 'killed' : 'died');
        for (const [key, h] of holders) if (h.pid === pid) holders.delete(key);
        break;
      }
      case 'leaving':
      case 'term': {
        // A clean stop ends the process's attempts (another process goes on with them) but
        // excuses no step re-run: its bodies in flight finished and were journaled before it
        // left. `leaving` (the app, before its leave is written) precedes every adopter's line;
        // `term` (the harness, once it exited) also covers a stop that kept its lease.
        const pid = l.kind === 'leaving' ? l.pid : Number(l.args[0]);
        queue.cut(l, pid, 'stopped');
        for (const [key, h] of holders) if (h.pid === pid) holders.delete(key);
        break;
      }
      case 'undrained':
        // ...unless a body outlived the stop's grace: its step runs again (at the next start, or
        // in the adopter once the lease the process kept has ended), as after a crash.
        crashes.push({ seq: l.seq, pid: l.pid });
        break;
      case 'outage':
        if (l.args[0] === 'begin') openOutage = l.seq;
        else if (openOutage !== undefined) {
          outages.push({ from: openOutage, to: l.seq });
          openOutage = undefined;
        }
        break;
      case 'enter': {
        const [key, tag] = l.args as [string, string];
        const h = holders.get(key);
        if (h && !(h.pid === l.pid && h.tag === tag))
          candidates.push({ key, holder: h, enterer: { pid: l.pid, tag, seq: l.seq } });
        holders.set(key, { pid: l.pid, tag, seq: l.seq });
        break;
      }
      case 'exit': {
        const [key, tag] = l.args as [string, string];
        if (holders.get(key)?.tag === tag) holders.delete(key);
        break;
      }
    }
  }
  if (openOutage !== undefined) outages.push({ from: openOutage, to: Infinity });
  queue.check(problems);
  let overlaps = 0;
  const zombies: string[] = [];
  for (const o of candidates) {
    const { key, holder: h, enterer: e } = o;
    const fence = zombieEvidence(lines, o);
    if (fence !== undefined) {
      zombies.push(
        `Counter ${key}: ${e.tag} adopted by pid ${e.pid} from pid ${h.pid}, which logged its fence ` +
          `${fence < e.seq ? 'before' : 'after'} the adopter entered (${Math.round(lines[e.seq]!.at - lines[fence]!.at)} ms)`,
      );
      continue;
    }
    overlaps++;
    problems.push({
      invariant: 'per-key exclusivity',
      detail: `Counter ${key}: ${e.tag} (pid ${e.pid}) entered while ${h.tag} (pid ${h.pid}) held it`,
    });
  }
  let executions = 0;
  let reruns = 0;
  let completedReruns = 0;
  let unexplainedReruns = 0;
  for (const [id, list] of starts) {
    executions += list.length;
    for (let i = 1; i < list.length; i++) {
      reruns++;
      const before = list[i - 1]!;
      const again = list[i]!;
      const ack = firstAck.get(id);
      if (ack !== undefined && ack < again.seq) {
        completedReruns++;
        problems.push({
          invariant: 'no completed step runs twice',
          detail: `step ${id} ran again (pid ${again.pid}) after its result was journaled and observed (pid ${before.pid})`,
        });
        continue;
      }
      const crashed = crashes.some(
        (c) => c.pid === before.pid && c.seq > before.seq && (c.fenced || c.seq < again.seq),
      );
      const outage =
        outages.some((o) => o.from < again.seq && o.to > before.seq) ||
        writeFails.some((w) => w.pid === before.pid && w.seq > before.seq && w.seq < again.seq);
      // Adopted in flight: another process ran it while the first execution had not even ended
      // (its process stalled past its lease, so it was reaped and its work adopted), and that
      // process was killed or fenced later. The same at-least-once re-run as after a crash.
      const adoptedInFlight =
        again.pid !== before.pid &&
        !(ends.get(id) ?? []).some(
          (e) => e.pid === before.pid && e.seq > before.seq && e.seq < again.seq,
        ) &&
        crashes.some((c) => c.pid === before.pid && c.seq > before.seq);
      if (!crashed && !outage && !adoptedInFlight) {
        unexplainedReruns++;
        problems.push({
          invariant: 'a step re-runs only if a crash cut it',
          detail: `step ${id} ran again (pid ${again.pid}) with no crash of pid ${before.pid} since its previous execution`,
        });
      }
    }
  }
  return {
    executions,
    steps: starts.size,
    reruns,
    completedReruns,
    unexplainedReruns,
    overlaps,
    zombieOverlaps: zombies.length,
    zombies,
    queueAdmissions: queue.admissions,
    queuePeak: queue.peak,
    queueReentries: queue.reentries,
    queueViolations: queue.violations,
    problems,
  };
}

/** The invocations inside the queue (see "Queue limits" on `analyzeLog`). */
class QueueSlots {
  /** Per tag: its key, its attempts' entries (pid, seq, cut), its exits. */
  private readonly tags = new Map<
    string,
    {
      key: string;
      enters: Array<{ pid: number; seq: number; cut?: { how: string; seq: number } }>;
      exits: number[];
    }
  >();
  readonly peak = { total: 0, perKey: 0 };
  /** Attempts that entered a slot their invocation held: after a cut, and otherwise. */
  readonly reentries = { afterCut: 0, other: 0 };
  violations = 0;

  get admissions(): number {
    return this.tags.size;
  }

  /** Process `pid` was killed, died or fenced (at `l`): its attempts were cut, not their slots. */
  cut(l: LogLine, pid: number, how: string): void {
    for (const t of this.tags.values()) {
      const last = t.enters[t.enters.length - 1]!;
      if (last.pid === pid) last.cut ??= { how, seq: l.seq };
    }
  }

  enter(l: LogLine): void {
    const [key, tag] = l.args as [string, string];
    const t = this.tags.get(tag);
    if (!t) {
      this.tags.set(tag, { key, enters: [{ pid: l.pid, seq: l.seq }], exits: [] });
      return;
    }
    if (t.enters[t.enters.length - 1]!.cut) this.reentries.afterCut++;
    else this.reentries.other++;
    t.enters.push({ pid: l.pid, seq: l.seq });
  }

  exit(l: LogLine): void {
    this.tags.get(l.args[1]!)?.exits.push(l.seq);
  }

  /** Judges every first entry against the spans of the others. */
  check(problems: Problem[]): void {
    const spans = [...this.tags].map(([tag, t]) => {
      const last = t.enters[t.enters.length - 1]!.seq;
      const to = t.exits.find((x) => x > last) ?? Infinity;
      return { tag, key: t.key, from: t.enters[0]!, to };
    });
    for (const e of spans) {
      const at = e.from.seq;
      const all = spans.filter((o) => o.from.seq <= at && o.to > at);
      const ofKey = all.filter((o) => o.key === e.key);
      this.peak.total = Math.max(this.peak.total, all.length);
      this.peak.perKey = Math.max(this.peak.perKey, ofKey.length);
      const over: string[] = [];
      if (all.length > QUEUE.concurrency)
        over.push(`${all.length} inside (limit ${QUEUE.concurrency})`);
      if (ofKey.length > QUEUE.perKey)
        over.push(`${ofKey.length} of key ${e.key} inside (limit ${QUEUE.perKey})`);
      if (over.length === 0) continue;
      this.violations++;
      const others = (over.length === 1 && ofKey.length > QUEUE.perKey ? ofKey : all)
        .filter((o) => o !== e)
        .map((o) => {
          const t = this.tags.get(o.tag)!;
          // The attempt inside at that moment, and whether its process was cut since.
          const attempt = [...t.enters].reverse().find((a) => a.seq < at)!;
          const cut =
            attempt.cut && attempt.cut.seq < at
              ? `, its process ${attempt.cut.how} at log seq ${attempt.cut.seq}`
              : '';
          const until = o.to === Infinity ? 'never exited' : `exited at log seq ${o.to}`;
          return `${o.tag} (key ${o.key}, entered at log seq ${o.from.seq}; attempt of pid ${attempt.pid} at log seq ${attempt.seq}${cut}; ${until})`;
        });
      problems.push({
        invariant: 'queue limits',
        detail: `${e.tag} (key ${e.key}, pid ${e.from.pid}) entered at log seq ${at}: ${over.join(', ')}; inside: ${others.join('; ')}`,
      });
    }
  }
}

/**
 * The seq of the holder's fence when the log proves overlap `o` a harmless zombie overlap (see
 * `analyzeLog`); undefined otherwise.
 */
function zombieEvidence(lines: LogLine[], o: Overlap): number | undefined {
  const { holder: h, enterer: e } = o;
  if (h.tag !== e.tag || h.pid === e.pid) return undefined;
  const step = stepId.add(h.tag);
  const handoff = handoffAfterFence(lines, o, step);
  if (handoff !== undefined) return handoff;
  let fenced: number | undefined;
  let adopterRanStep = false;
  for (let i = h.seq + 1; i < lines.length; i++) {
    const l = lines[i]!;
    // The holder's lines up to its fence; after it, its old registration commits nothing.
    if (l.pid === h.pid && fenced === undefined) {
      if (l.kind === 'fenced') fenced = l.seq;
      // It observed its step's result: something it wrote was journaled.
      else if (l.kind === 'ack' && l.args[0] === step) return undefined;
      // After the adopter entered, it ran on before any fence: no evidence.
      else if (l.seq > e.seq && ['start', 'enter', 'ack', 'awk'].includes(l.kind)) return undefined;
    } else if (l.pid === e.pid && l.seq > e.seq && l.kind === 'start' && l.args[0] === step) {
      adopterRanStep = true;
    }
  }
  return adopterRanStep ? fenced : undefined;
}

/**
 * No overlap at all: the holder's process fenced itself (dropping every runner) before the
 * adopter entered, and logged nothing of this invocation after its fence (no step body still
 * in flight, no exit). Its `exit` line is missing only because a dropped runner never returns
 * from its handler. Returns the fence's seq, or undefined without that evidence.
 */
function handoffAfterFence(lines: LogLine[], o: Overlap, step: string): number | undefined {
  const { holder: h, enterer: e } = o;
  const mine = (l: LogLine): boolean =>
    l.args.some((a) => a === h.tag || a === step || a.endsWith(`/${h.tag}`));
  let fenced: number | undefined;
  let inFlight = 0; // step bodies of the holder started and not ended
  let acked = false;
  for (let i = h.seq + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if ((l.kind === 'kill' || l.kind === 'died') && Number(l.args[0]) === h.pid) {
      // Its process died silent (seen after a database restart under load: it did nothing
      // from before the adopter entered until its kill): the surest fence of all.
      if (fenced !== undefined) break;
      if (inFlight > 0) return undefined;
      fenced = l.seq;
      break;
    }
    if (l.pid !== h.pid) continue;
    if (fenced === undefined) {
      // It observed its step's result before the adopter entered: the hand-off is still in
      // order (the adopter replays that result from the journal), unless the adopter ran the
      // step again (checked below; the re-run invariant judges that too).
      if (l.kind === 'ack' && mine(l) && l.seq < e.seq) acked = true;
      if (l.seq > e.seq) {
        // After the adopter entered, the holder may only fence (a stalled process waking up):
        // anything it does of this invocation, or any work at all, before its fence is no
        // evidence.
        if (mine(l) || ['start', 'enter', 'ack', 'awk'].includes(l.kind)) return undefined;
      } else if (l.kind === 'start' && mine(l)) inFlight++;
      else if (l.kind === 'end' && mine(l)) inFlight--;
      if (l.kind === 'fenced') {
        // A body still running when the adopter entered could run on next to it.
        if (inFlight > 0) return undefined;
        fenced = l.seq;
      }
    } else if (mine(l)) {
      // Its process joined again under a new registration and adopted the invocation anew
      // after the adopter: a later hand-off, judged as its own overlap.
      if (l.kind === 'enter' && l.seq > e.seq) break;
      return undefined;
    }
  }
  if (
    acked &&
    lines.some((l) => l.pid === e.pid && l.seq > e.seq && l.kind === 'start' && l.args[0] === step)
  )
    return undefined;
  return fenced;
}

async function unfinished(
  cluster: Cluster,
  pick: () => number,
): Promise<Array<{ id: string; target: string; status: string }>> {
  const out: Array<{ id: string; target: string; status: string }> = [];
  for (const status of UNFINISHED) {
    const r = await request(cluster, pick, 'GET', `/invocations?status=${status}&limit=1000`, {
      api: 'admin',
    });
    if (r.kind !== 'ok' || r.status !== 200) continue;
    for (const inv of r.json.invocations as Array<{ id: string; target: string; status: string }>)
      out.push({ id: inv.id, target: inv.target, status: inv.status });
  }
  return out;
}

function describeError(error: { code: string; message: string } | undefined): string {
  return error ? ` (${error.code}: ${error.message})` : '';
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
