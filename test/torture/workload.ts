/**
 * Executes generated client operations against the cluster and keeps the history the checker
 * needs: every acknowledged invocation with what it must come to, every id each dedupe scope
 * (a workflow key, an idempotency key) answered, and the expected counter totals.
 *
 * Requests that carry a dedupe key are retried until acknowledged, as a careful client would
 * (that is what the key is for); a plain request is sent once, and if its fate is unknown
 * (connection reset, timeout) its effect is counted as "maybe".
 */
import { isDeepStrictEqual } from 'node:util';
import type { Cluster } from './cluster.js';
import { buildDefinition, expectRun, judgeResult, type DRun } from './dflow.js';
import type { ClientOp, Duplicates } from './generator.js';
import { NO_PROCESS, request, sleep, type Reply, type RequestOptions } from './http.js';
import { queuedOutput, type FlowOutput, type LogTail, type QueuedInput } from './program.js';

/** What an acknowledged invocation must come to. */
export interface Expectation {
  op: string;
  /** `complete`: status completed; `finish`: completed or failed (e.g. it was cancelled). */
  must: 'complete' | 'finish';
  output?: unknown;
  /** Where to read it: the admin API for invocations of internal services (flow runs). */
  api?: 'admin';
}

export interface Problem {
  invariant: string;
  detail: string;
}

export class Ledger {
  /** Acknowledged invocation id → expectation. */
  readonly acked = new Map<string, Expectation>();
  /** Dedupe scope → every invocation id it answered (must be one). */
  readonly scopes = new Map<string, Set<string>>();
  /** Counter key → sum of acknowledged adds, and of adds whose fate is unknown. */
  readonly counters = new Map<string, { exact: number; maybe: number }>();
  /** Every declarative flow run started (acknowledged or not), for the log check. */
  readonly dflows: DRun[] = [];
  readonly problems: Problem[] = [];
  /** Times of acknowledgements, for throughput around kills. */
  readonly ackTimes: number[] = [];
  /** `<status> <what>` → count, for the report (5xx and unexpected 4xx). */
  readonly odd = new Map<string, number>();
  requests = 0;
  acks = 0;
  unknownFate = 0;
  awakeablesCompleted = 0;
  cancels = 0;
  /** Declarative flow runs whose cancel was accepted (202). */
  flowCancels = 0;

  count(key: string, exact: number, maybe: number): void {
    const c = this.counters.get(key) ?? { exact: 0, maybe: 0 };
    c.exact += exact;
    c.maybe += maybe;
    this.counters.set(key, c);
  }

  ack(op: string, scope: string | undefined, id: string | undefined, e: Expectation): void {
    this.acks++;
    this.ackTimes.push(Date.now());
    if (id === undefined) return;
    if (!this.acked.has(id)) this.acked.set(id, e);
    if (scope === undefined) return;
    const ids = this.scopes.get(scope) ?? new Set<string>();
    ids.add(id);
    this.scopes.set(scope, ids);
    if (ids.size === 2) {
      this.problems.push({
        invariant: 'one invocation per dedupe key',
        detail: `${scope} (${op}) answered two invocation ids: ${[...ids].join(', ')}`,
      });
    }
  }
}

export interface WorkloadOptions {
  cluster: Cluster;
  ledger: Ledger;
  log: LogTail;
  /** Picks a process (index into the live ones). */
  pick: () => number;
  /** Retries of keyed requests stop at this time (the run's end). */
  deadline: () => number;
  /** The table of flows' `database` steps, when the run has their database. */
  flowDbTable?: string;
}

const EXPECTED_4XX = new Set([409]);

export class Workload {
  constructor(private readonly o: WorkloadOptions) {}

  /** Settles once the run's deadline has passed (polled: the deadline can move). */
  private async pastDeadline(): Promise<void> {
    while (Date.now() <= this.o.deadline()) await sleep(500);
  }

  /** Runs one operation to its end (including its later duplicates, signals and cancels). */
  async run(op: ClientOp): Promise<void> {
    if (op.kind === 'flow') return this.flow(op);
    if (op.kind === 'work') return this.work(op);
    if (op.kind === 'queued') return this.queued(op);
    if (op.kind === 'dflow') return this.dflow(op);
    return this.add(op);
  }

  private async send(
    what: string,
    method: string,
    path: string,
    options: RequestOptions,
    tolerated: number[] = [],
  ): Promise<Reply> {
    const reply = await request(this.o.cluster, this.o.pick, method, path, options);
    if (reply.kind !== 'refused' || reply.error !== NO_PROCESS) this.o.ledger.requests++;
    if (reply.kind === 'ok' && reply.status >= 400 && !EXPECTED_4XX.has(reply.status)) {
      const key = `${reply.status} ${what}`;
      this.o.ledger.odd.set(key, (this.o.ledger.odd.get(key) ?? 0) + 1);
      if (reply.status < 500 && !tolerated.includes(reply.status)) {
        this.o.ledger.problems.push({
          invariant: 'valid requests are accepted',
          detail: `${method} ${path} answered ${reply.status}: ${JSON.stringify(reply.json)}`,
        });
      }
    }
    return reply;
  }

  /**
   * Sends until the answer is definite and successful (2xx, or one of `accept`), or the run's
   * deadline passes; returns the last reply and whether any attempt's fate was unknown.
   */
  private async untilOk(
    what: string,
    method: string,
    path: string,
    options: RequestOptions,
    accept: number[] = [],
  ): Promise<{ reply: Reply; unknown: boolean }> {
    let unknown = false;
    for (;;) {
      const reply = await this.send(what, method, path, options, accept);
      if (reply.kind === 'ok' && (reply.status < 300 || accept.includes(reply.status)))
        return { reply, unknown };
      if (reply.kind === 'ok' && reply.status < 500 && !accept.includes(reply.status))
        return { reply, unknown };
      if (reply.kind === 'indeterminate' || reply.kind === 'ok') unknown = true;
      if (Date.now() > this.o.deadline()) return { reply, unknown };
      await sleep(150 + Math.floor(Math.random() * 250));
    }
  }

  /** The first request and its duplicates (concurrent and later), each retried until it lands. */
  private async withDuplicates(
    dupes: Duplicates,
    submit: (copy: number) => Promise<void>,
  ): Promise<void> {
    const copies = [submit(0)];
    for (let i = 0; i < dupes.concurrent; i++) copies.push(submit(1 + i));
    for (const [i, ms] of dupes.laterMs.entries())
      copies.push(sleep(ms).then(() => submit(1 + dupes.concurrent + i)));
    await Promise.all(copies);
  }

  private async flow(op: Extract<ClientOp, { kind: 'flow' }>): Promise<void> {
    const { ledger } = this.o;
    const name = `flow ${op.key}`;
    const scope = `workflow Flow/${op.key}`;
    const expected: FlowOutput = { key: op.key, ops: op.input.ops.length };
    const e: Expectation =
      op.cancelAfterMs === undefined
        ? { op: name, must: 'complete', output: expected }
        : { op: name, must: 'finish' };
    const via = op.cancelAfterMs === undefined ? op.via : 'send';
    let acked = false;
    let unknown = false;
    let resolveFirst!: (id: string | undefined) => void;
    const firstAck = new Promise<string | undefined>((r) => (resolveFirst = r));
    const submit = async (copy: number): Promise<void> => {
      const headers: Record<string, string> = op.idemHeaders
        ? { 'idempotency-key': `${op.key}-copy${copy}` }
        : {};
      const path = `/Flow/${op.key}/run${via === 'send' ? '/send' : ''}`;
      const { reply, unknown: u } = await this.untilOk(`POST /Flow/{key}/run`, 'POST', path, {
        body: op.input,
        headers,
        timeoutMs: via === 'call' ? 30_000 : 15_000,
      });
      unknown ||= u;
      if (reply.kind !== 'ok' || reply.status >= 300) return;
      acked = true;
      if (via === 'send') {
        const id = reply.json?.invocationId as string | undefined;
        ledger.ack(name, scope, id, e);
        resolveFirst(id);
      } else {
        ledger.ack(name, scope, undefined, e);
        resolveFirst(undefined);
        if (!isDeepStrictEqual(reply.json, expected)) {
          ledger.problems.push({
            invariant: 'results are right',
            detail: `${name}: call answered ${JSON.stringify(reply.json)}, expected ${JSON.stringify(expected)}`,
          });
        }
      }
    };
    const afterAck = async (): Promise<void> => {
      // Everything below happens relative to the first acknowledgement (or never). However late
      // it comes: under kills and load an acknowledgement can take minutes, and a flow whose
      // promises were never signalled would wait forever (the checker would call it stuck).
      const ready = await Promise.race([
        firstAck,
        this.pastDeadline().then(() => 'timeout' as const),
      ]);
      if (ready === 'timeout' || !acked) return;
      await Promise.all([
        ...op.awakeables.map(async (a) => {
          await sleep(a.afterMs);
          let id: string | undefined;
          while ((id = this.o.log.awakeable(op.key, a.op)) === undefined) {
            if (Date.now() > this.o.deadline()) return;
            await sleep(100);
          }
          const body = a.action === 'resolve' ? `v-${op.key}` : { message: 'torture says no' };
          // The app publishes the id from a step, so it is durable (and resolvable through
          // every process) before the harness can read it: a 404 is a violation, unless the
          // flow is cancelled (a cancel delivered at ctx.awakeable() creates no awakeable, and
          // its id resolves nothing). 409: already completed, or its invocation ended.
          const { reply } = await this.untilOk(
            `POST /awakeables/{id}/${a.action}`,
            'POST',
            `/awakeables/${id}/${a.action}`,
            { body },
            op.cancelAfterMs === undefined ? [409] : [404, 409],
          );
          if (reply.kind === 'ok' && reply.status === 200) ledger.awakeablesCompleted++;
        }),
        ...op.signals.map(async (s) => {
          await sleep(s.afterMs);
          await this.untilOk(
            'POST /Flow/{key}/signal',
            'POST',
            `/Flow/${op.key}/signal`,
            { body: { name: s.name, value: `v-${s.name}` } },
            [409],
          );
        }),
        (async () => {
          if (op.cancelAfterMs === undefined) return;
          await sleep(op.cancelAfterMs);
          const id = await firstAck;
          if (!id) return;
          const { reply } = await this.untilOk(
            'POST /invocations/{id}/cancel',
            'POST',
            `/invocations/${id}/cancel`,
            { api: 'admin' },
            [409],
          );
          if (reply.kind === 'ok' && reply.status === 202) ledger.cancels++;
        })(),
      ]);
    };
    const follow = afterAck();
    await this.withDuplicates(op.dupes, submit);
    if (!acked) resolveFirst(undefined);
    await follow;
    if (!acked && unknown) ledger.unknownFate++;
    // The flow's adds: exact once it is acknowledged (it must run to its end exactly once),
    // maybe if it can be cancelled or its submission's fate is unknown.
    for (const o of op.input.ops) {
      if (o.op !== 'add' && o.op !== 'addCall') continue;
      if (acked && op.cancelAfterMs === undefined) ledger.count(o.key, o.n, 0);
      else if (acked || unknown) ledger.count(o.key, 0, o.n);
    }
  }

  /**
   * A declarative flow run (docs/flows.md): its definition registered first when generated
   * (retried until acknowledged: an equal definition registers nothing, so it stays version 1),
   * then `POST /flows/<name>/run` with its key, every copy retried until answered. Each answer
   * must be the result the definition computes, every answer of the key the same run (one
   * invocation id, one result), and the run's stored output that same result.
   */
  private async dflow(op: Extract<ClientOp, { kind: 'dflow' }>): Promise<void> {
    const { ledger } = this.o;
    const { tag } = op.input;
    const name = `flow run ${op.name} ${tag}`;
    const runId = op.by === 'id' ? `${op.name}:${tag}` : `${op.name}:idem:${tag}`;
    const path = `/flows/${op.name}/run${op.by === 'id' ? `?id=${tag}` : ''}`;
    const headers: Record<string, string> = op.by === 'idem' ? { 'idempotency-key': tag } : {};
    const run: DRun = {
      op: name,
      acked: false,
      expect: expectRun(op.name, op.steps, op.input, runId),
      request: { path, headers, body: op.input },
    };
    ledger.dflows.push(run);
    if (op.register) {
      const { reply } = await this.untilOk(
        'POST /flows/definitions',
        'POST',
        '/flows/definitions',
        { api: 'admin', body: buildDefinition(op.name, op.steps, this.o.flowDbTable) },
      );
      // Never registered (the run's deadline passed): nothing can have run.
      if (reply.kind !== 'ok' || reply.status >= 300) return;
      if (reply.json?.version !== 1)
        ledger.problems.push({
          invariant: 'a flow registration is idempotent',
          detail: `${op.name}: registering it (again) answered ${JSON.stringify(reply.json)}, expected version 1`,
        });
    }
    let unknown = false;
    let answered = false;
    const copies = this.withDuplicates(op.dupes, async () => {
      const r = await this.untilOk('POST /flows/{name}/run', 'POST', path, {
        body: op.input,
        headers,
        timeoutMs: 30_000,
      });
      unknown ||= r.unknown;
      const { reply } = r;
      if (reply.kind !== 'ok') return;
      // A cancelled run answers 409 `cancelled` (docs/flows.md, "Running"), to every copy.
      const cancelled = reply.status === 409 && reply.json?.code === 'cancelled';
      if (reply.status !== 200 && !cancelled) return;
      answered = true;
      if (cancelled && !run.cancelSent)
        ledger.problems.push({
          invariant: 'flow results are what the definition computes',
          detail: `${name}: answered ${JSON.stringify(reply.json)}, but nobody cancelled it`,
        });
      const wrong = cancelled ? '' : judgeResult(run.expect.result, reply.json);
      if (wrong)
        ledger.problems.push({
          invariant: 'flow results are what the definition computes',
          detail: `${name}: ${wrong}`,
        });
      if (run.first === undefined) {
        run.first = reply.json;
        run.cancelled = cancelled;
      } else if (!isDeepStrictEqual(run.first, reply.json))
        ledger.problems.push({
          invariant: 'a flow run key answers one run',
          detail: `${name}: answered ${JSON.stringify(reply.json)} after ${JSON.stringify(run.first)}`,
        });
      run.acked = true;
      // `keel.flows` is internal: its invocations are read on the admin API, which shows no
      // output; the checker asks the run key again instead (checkFlowRuns). A cancelled run's
      // answer has no invocation id: the cancel found it in the admin API's list.
      const id = cancelled ? run.invocationId : (reply.json?.invocationId as string | undefined);
      ledger.ack(name, `flow run ${runId}`, id, {
        op: name,
        must: cancelled ? 'finish' : 'complete',
        api: 'admin',
      });
    });
    await Promise.all([copies, this.cancelFlowRun(op, run, runId, () => answered)]);
    if (!run.acked && unknown) ledger.unknownFate++;
  }

  /**
   * Cancels a flow run `cancelAfterMs` after its first request (admin API: its invocation found
   * by key, then `POST /invocations/{id}/cancel`), unless it was answered by then. The run then
   * answers 409 `cancelled`, or its result if the cancel came after its end (a 409 to the cancel).
   */
  private async cancelFlowRun(
    op: Extract<ClientOp, { kind: 'dflow' }>,
    run: DRun,
    runId: string,
    answered: () => boolean,
  ): Promise<void> {
    if (op.cancelAfterMs === undefined) return;
    await sleep(op.cancelAfterMs);
    let id: string | undefined;
    while (id === undefined) {
      if (answered() || Date.now() > this.o.deadline()) return;
      const list = await this.send(
        'GET /invocations?service=keel.flows',
        'GET',
        `/invocations?service=keel.flows&key=${encodeURIComponent(runId)}`,
        { api: 'admin' },
      );
      const found = list.kind === 'ok' && list.status === 200 ? list.json?.invocations : undefined;
      id = Array.isArray(found) ? (found[0]?.id as string | undefined) : undefined;
      if (id === undefined) await sleep(50);
    }
    run.invocationId = id;
    // Sent: whether or not it is answered, it may land, so the run may owe any compensation.
    run.cancelSent = true;
    const { reply } = await this.untilOk(
      'POST /invocations/{id}/cancel',
      'POST',
      `/invocations/${id}/cancel`,
      { api: 'admin' },
      [409],
    );
    if (reply.kind === 'ok' && reply.status === 202) this.o.ledger.flowCancels++;
  }

  private async work(op: Extract<ClientOp, { kind: 'work' }>): Promise<void> {
    await this.serviceOp(op, 'Worker/work', `work ${op.tag}`, {
      input: { tag: op.tag, steps: op.steps, ms: 2, sleepMs: op.sleepMs },
      output: `${op.tag}:${op.steps}`,
    });
  }

  /**
   * `Queued.work`, the handler in the flow-control queue: acknowledged like `Worker.work`, so
   * the checker knows which must complete; the log shows whether the queue's limits held.
   */
  private async queued(op: Extract<ClientOp, { kind: 'queued' }>): Promise<void> {
    const input: QueuedInput = { tag: op.tag, key: op.key, prio: op.prio, sleepMs: op.sleepMs };
    await this.serviceOp(op, 'Queued/work', `queued ${op.tag}`, {
      input,
      output: queuedOutput(input),
      // A call waits for its turn in the queue besides its run: the flows' call timeout.
      ...(op.via === 'call' ? { timeoutMs: 30_000 } : {}),
    });
  }

  /**
   * A call or a (maybe delayed) send of a service handler whose output is known: sent once
   * without an idempotency key, else retried (with its duplicates) until acknowledged.
   */
  private async serviceOp(
    op: Extract<ClientOp, { kind: 'work' | 'queued' }>,
    target: string,
    name: string,
    call: { input: unknown; output: string; timeoutMs?: number },
  ): Promise<void> {
    const { output } = call;
    const path =
      op.via === 'send'
        ? `/${target}/send${op.delayMs !== undefined ? `?delay=${op.delayMs}ms` : ''}`
        : `/${target}`;
    const what = `POST /${target}${op.via === 'send' ? '/send' : ''}`;
    const options: RequestOptions = {
      body: call.input,
      ...(call.timeoutMs !== undefined ? { timeoutMs: call.timeoutMs } : {}),
    };
    const landed = (reply: Reply, scope: string | undefined): void => {
      if (reply.kind !== 'ok' || reply.status >= 300) return;
      const id = op.via === 'send' ? (reply.json?.invocationId as string) : undefined;
      this.o.ledger.ack(name, scope, id, { op: name, must: 'complete', output });
      if (op.via === 'call' && reply.json !== output) {
        this.o.ledger.problems.push({
          invariant: 'results are right',
          detail: `${name}: call answered ${JSON.stringify(reply.json)}, expected "${output}"`,
        });
      }
    };
    if (!op.idem) {
      landed(await this.send(what, 'POST', path, options), undefined);
      return;
    }
    const idem = op.idem;
    const scope = `idempotency-key ${target} ${idem.key}`;
    await this.withDuplicates(idem.dupes, async () => {
      const { reply } = await this.untilOk(what, 'POST', path, {
        ...options,
        headers: { 'idempotency-key': idem.key },
      });
      landed(reply, scope);
    });
  }

  private async add(op: Extract<ClientOp, { kind: 'add' }>): Promise<void> {
    const { ledger } = this.o;
    const name = `add ${op.tag}`;
    const input = { tag: op.tag, n: op.amount };
    const key = encodeURIComponent(op.key);
    const path =
      op.via === 'send'
        ? `/Counter/${key}/add/send${op.delayMs !== undefined ? `?delay=${op.delayMs}ms` : ''}`
        : `/Counter/${key}/add`;
    const what = `POST /Counter/{key}/add${op.via === 'send' ? '/send' : ''}`;
    const e: Expectation = { op: name, must: 'complete' };
    if (!op.idem) {
      const reply = await this.send(what, 'POST', path, { body: input });
      if (reply.kind === 'ok' && reply.status < 300) {
        ledger.ack(name, undefined, op.via === 'send' ? reply.json?.invocationId : undefined, e);
        ledger.count(op.key, op.amount, 0);
      } else if (reply.kind === 'indeterminate' || (reply.kind === 'ok' && reply.status >= 500)) {
        ledger.unknownFate++;
        ledger.count(op.key, 0, op.amount);
      }
      return;
    }
    const idem = op.idem;
    const scope = `idempotency-key Counter/${op.key}/add ${idem.key}`;
    let acked = false;
    let unknown = false;
    await this.withDuplicates(idem.dupes, async () => {
      const r = await this.untilOk(what, 'POST', path, {
        body: input,
        headers: { 'idempotency-key': idem.key },
      });
      unknown ||= r.unknown;
      if (r.reply.kind !== 'ok' || r.reply.status >= 300) return;
      acked = true;
      ledger.ack(name, scope, op.via === 'send' ? r.reply.json?.invocationId : undefined, e);
    });
    if (acked) ledger.count(op.key, op.amount, 0);
    else if (unknown) {
      ledger.unknownFate++;
      ledger.count(op.key, 0, op.amount);
    }
  }
}
