/**
 * Declarative flows (docs/flows.md, `keel/flows`) in the torture harness: the shape of a
 * generated flow, the definition built from it (registered over the admin API, or by the app
 * at start), the result and the effects the flow semantics promise for it, and the log check.
 *
 * Every step with an effect is a `transform` step calling a function of the torture app
 * (test/fixtures/torture-app.ts), which writes the execution log's usual `start` / `end` lines
 * under a log id `D/<tag>/<step id>`. A step's input carries the previous effect's output (its
 * log id) as `prev`, and the function logs `ack <prev>` first: the next step's body runs only
 * once the previous step's result was journaled and handed back, which is what an `ack` line
 * means (test/torture/program.ts). So the checker's step rules (no completed step runs twice, a
 * step re-runs only after a crash) apply to flow steps as they are.
 *
 * `api` steps call the harness's downstream service (downstream.ts) through the app's
 * integration `Downstream`: it logs `api <log id> <Idempotency-Key>` per request received, and
 * the checker holds every request of a step to one key, the run's `{invocationId}:{step id}`.
 *
 * Failures a flow goes through as documented: `onError: continue` steps (`failx`: logged as an
 * execution, then failing; recorded in `errors`, the flow going on, nothing stored, no
 * compensation owed), step timeouts (an effect outlasting its `timeout`: the flow fails with
 * `timeout` and compensates, that step included, while its body runs on), compensations that
 * fail and are retried (`flaky`), fail for good (`broken`, `onError: retry` with one retry: the
 * result is `compensation_failed`) or fail and go on (`failx`, `onError: continue`), `compensate`
 * lists of several such steps (run in list order; a `broken` one ends its list), and runs
 * cancelled over the admin API while running or waiting, some while a step with a `timeout` is
 * in flight (their state, read once quiet, is held against the log: no forward step beyond the
 * one the cancel reached, the completed steps' compensations in reverse, and the cut timed
 * step's first when its body began, nothing else undone).
 *
 * `database` steps run on PostgreSQL, MariaDB and Redis, whichever the run has
 * ({@link FLOW_DB}, {@link FLOW_MYSQL}, {@link FLOW_REDIS}).
 */
import { isDeepStrictEqual } from 'node:util';
import type { LogLine } from './program.js';
import type { Problem } from './workload.js';

/**
 * A step's compensation: none (`false`), an effect (`true`), an effect whose first attempt in
 * each process fails (`flaky`: retried until it succeeds, the default for compensations), one
 * that always fails with `onError: retry` and one retry (`broken`: it fails for good, so the run
 * is `compensation_failed`), or one that logs an execution and fails with `onError: continue`
 * (`soft`: recorded in `errors`, the compensation counts as done).
 */
export type DUndo = boolean | 'flaky' | 'broken' | 'soft';

/**
 * A step's compensation: one step ({@link DUndo}, log id `<step>u`), or a `compensate` list of
 * several (log ids `<step>u0`, `<step>u1`...), which docs/flows.md runs in list order, each done
 * before the next begins; a `continue` one (`soft`) goes on to the next, one failing for good
 * (`broken`) ends the list there (the ones after it never run) and fails the step's undo.
 */
export type DUndos = DUndo | Array<Exclude<DUndo, false>>;

/** The compensation steps of a step with `undo`: ids and kinds, in the order they run. */
function undoItems(step: string, undo: DUndos): Array<{ id: string; kind: Exclude<DUndo, false> }> {
  if (undo === false) return [];
  if (Array.isArray(undo)) return undo.map((kind, j) => ({ id: `${step}u${j}`, kind }));
  return [{ id: undoId(step), kind: undo }];
}

/** One step of a generated flow. */
export type DStep =
  /** A journaled effect (`effect` transform) pausing `ms`; `undo`: its compensation. */
  | { kind: 'effect'; id: string; ms: number; undo: DUndos }
  /**
   * An effect with a `timeout`: `late`, its body lasts `ms`, far past `timeoutMs`, so the flow
   * fails with `timeout` and compensates (this step's undo included: it is in doubt); otherwise
   * it ends well within it and is an effect whose undo is registered before it runs (in a run
   * that may be cancelled, it lasts long enough for the cancel to land while it is in flight:
   * then its undo is owed, docs/flows.md and src/core/saga.ts `undoWhen: 'maybe'`).
   */
  | { kind: 'timed'; id: string; ms: number; timeoutMs: number; late: boolean; undo: DUndos }
  /** A step that logs an execution and fails, `onError: continue`; its undo is never owed. */
  | { kind: 'cont'; id: string; undo: boolean }
  /**
   * A `database` step on `on` (default `pg`): on PostgreSQL ({@link FLOW_DB}) and MariaDB
   * ({@link FLOW_MYSQL}) an INSERT of its log id into the run's table, `RETURNING` it; on Redis
   * ({@link FLOW_REDIS}) a script appending to the step's list (one entry per execution),
   * answering `OK`. Only in runs that have that database.
   */
  | { kind: 'db'; id: string; on?: DDb }
  /** An `api` step: a POST to the downstream service (downstream.ts) with its idempotency key. */
  | { kind: 'api'; id: string }
  /** An effect whose first attempt in each process fails: `onError: retry` (durable backoff). */
  | { kind: 'flaky'; id: string; ms: number }
  /** An expression step: `input.n * 2 + add`, stored as a variable (the result's `data`). */
  | { kind: 'expr'; id: string; add: number }
  /** `conditional` on `input.n > threshold`, each branch a list of effects. */
  | { kind: 'branch'; id: string; threshold: number; then: DStep[]; else: DStep[] }
  /** A step that fails the flow (`fail` transform): the completed steps are compensated. */
  | { kind: 'fail'; id: string };

/** The transform and `onError` of each kind of compensation (see {@link DUndo}). */
function undoStep(kind: Exclude<DUndo, false>): Record<string, unknown> {
  switch (kind) {
    case true:
      return { function: 'effect' };
    case 'flaky':
      return { function: 'flaky' };
    case 'broken':
      return { function: 'broken', onError: 'retry', retries: 1, backoff: { initial: '50ms' } };
    case 'soft':
      return { function: 'failx', onError: 'continue' };
  }
}

/** The input of a run: the log ids' tag, and the number branches and expressions read. */
export interface DInput {
  tag: string;
  n: number;
}

/** The flow the app registers at start, in every process (test/fixtures/torture-app.ts). */
export const FIXED_DFLOW = {
  name: 'torture-fixed',
  steps: [
    { kind: 'effect', id: 'a', ms: 3, undo: true },
    { kind: 'api', id: 'call' },
    { kind: 'expr', id: 'x', add: 1 },
    {
      kind: 'branch',
      id: 'pick',
      threshold: 4,
      then: [{ kind: 'effect', id: 'big', ms: 2, undo: false }],
      else: [{ kind: 'effect', id: 'small', ms: 2, undo: false }],
    },
    { kind: 'flaky', id: 'b', ms: 2 },
  ] as DStep[],
};

/** The databases of `database` steps: PostgreSQL, MariaDB, Redis. */
export type DDb = 'pg' | 'mysql' | 'redis';

/**
 * The PostgreSQL database `database` steps use: declared by the app when the harness gives it one
 * (`TORTURE_FLOWDB_URL`, `TORTURE_FLOWDB_TABLE`), a table of one row per committed statement.
 * The app's `FlowDatabase` for it (test/fixtures/torture-app.ts) runs each statement on the
 * connection pool of `keel/databases` and logs it as a step body (`start`/`end`, and `ack` of
 * the previous step's output, its second parameter).
 */
export const FLOW_DB = {
  name: 'tortureDb',
  /** The table's definition (`at`: when the row was written, for a person reading it). */
  create: (table: string): string =>
    `CREATE TABLE ${table} (log text NOT NULL, prev text, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  insert: (table: string): string =>
    `INSERT INTO ${table} (log, prev) VALUES ($1, $2) RETURNING log`,
};

/**
 * The MariaDB database of `database` steps (`TORTURE_FLOWDB_MYSQL_URL`), as {@link FLOW_DB}:
 * the same table on the server's `test` database, `?` placeholders (docs/flows.md), and
 * MariaDB's own `INSERT ... RETURNING`.
 */
export const FLOW_MYSQL = {
  name: 'tortureMy',
  create: (table: string): string =>
    `CREATE TABLE ${table} (log varchar(255) NOT NULL, prev varchar(255), at timestamp(6) NOT NULL DEFAULT current_timestamp(6))`,
  insert: (table: string): string => `INSERT INTO ${table} (log, prev) VALUES (?, ?) RETURNING log`,
};

/**
 * The Redis database of `database` steps (`TORTURE_FLOWDB_REDIS_URL`): a `command` step, `EVAL`
 * of a script that appends the previous step's output to a list of the step's own
 * (`<table>:<log id>`, one entry per execution, so executions can be counted as rows are) and
 * answers `OK` whatever the list held (the output a rerun after a crash gives too).
 */
export const FLOW_REDIS = {
  name: 'tortureKv',
  script: "redis.call('RPUSH', KEYS[1], ARGV[1]) return 'OK'",
  key: (table: string, log: string): string => `${table}:${log}`,
  /** The log id of a step's list (`key`'s inverse). */
  logOf: (key: string): string => key.slice(key.indexOf(':') + 1),
};

/** The log id of a flow step of the run tagged `tag`. */
export const dLogId = (tag: string, step: string): string => `D/${tag}/${step}`;
/**
 * A compensation's step id (forward ids never end in `u`: `s<n>`, `s<n>t<m>`, `s<n>e<m>`,
 * `boom`); those of a `compensate` list are `<step>u<j>` (see {@link undoItems}).
 */
const undoId = (step: string): string => `${step}u`;
const variable = (step: string): string => `v_${step}`;

/**
 * The flow definition (JSON, as docs/flows.md describes) of a generated flow; `table`: the
 * table of its `database` steps (required when it has some).
 */
export function buildDefinition(
  name: string,
  steps: DStep[],
  table?: string,
): Record<string, unknown> {
  /** The expression of the previous effect's log id, which the next effect logs as observed. */
  let prev: string | undefined;
  const build = (s: DStep): Record<string, unknown> => {
    const effectInput = (id: string, ms: number, withPrev: boolean): Record<string, unknown> => ({
      tag: '{{input.tag}}',
      step: id,
      ms,
      ...(withPrev && prev !== undefined ? { prev: `{{${prev}}}` } : {}),
    });
    const compensate = (id: string, undo: DUndos): Record<string, unknown> => {
      const items = undoItems(id, undo).map((u) => ({
        id: u.id,
        type: 'transform',
        ...undoStep(u.kind),
        input: effectInput(u.id, 2, false),
      }));
      if (items.length === 0) return {};
      return { compensate: Array.isArray(undo) ? items : items[0] };
    };
    switch (s.kind) {
      case 'effect': {
        const def = {
          id: s.id,
          type: 'transform',
          function: 'effect',
          input: effectInput(s.id, s.ms, true),
          ...compensate(s.id, s.undo),
        };
        prev = `steps.${s.id}`;
        return def;
      }
      case 'timed': {
        const def = {
          id: s.id,
          type: 'transform',
          function: 'effect',
          input: effectInput(s.id, s.ms, true),
          timeout: `${s.timeoutMs}ms`,
          ...compensate(s.id, s.undo),
        };
        prev = `steps.${s.id}`;
        return def;
      }
      case 'cont': {
        const def = {
          id: s.id,
          type: 'transform',
          function: 'failx',
          input: effectInput(s.id, 0, true),
          onError: 'continue',
          // Stores nothing (docs/flows.md): the variable stays out of the result's `data`.
          storeAs: variable(s.id),
          ...compensate(s.id, s.undo),
        };
        // No output to pass on: the next effect acknowledges the journaled failure by its log id.
        prev = `'D/' + input.tag + '/${s.id}'`;
        return def;
      }
      case 'db': {
        if (table === undefined) throw new Error(`flow ${name}: a database step needs a table`);
        const log = `D/{{input.tag}}/${s.id}`;
        if (s.on === 'redis') {
          const def = {
            id: s.id,
            type: 'database',
            database: FLOW_REDIS.name,
            command: 'EVAL',
            args: [
              FLOW_REDIS.script,
              1,
              FLOW_REDIS.key(table, log),
              prev === undefined ? 'none' : `{{${prev}}}`,
            ],
          };
          // Its output is `OK`: the next step acknowledges its log id, as after a `cont` step.
          prev = `'D/' + input.tag + '/${s.id}'`;
          return def;
        }
        const db = s.on === 'mysql' ? FLOW_MYSQL : FLOW_DB;
        const def = {
          id: s.id,
          type: 'database',
          database: db.name,
          query: db.insert(table),
          params: [log, prev === undefined ? null : `{{${prev}}}`],
        };
        prev = `steps.${s.id}.rows[0].log`;
        return def;
      }
      case 'api': {
        const def = {
          id: s.id,
          type: 'api',
          integration: 'Downstream',
          operation: 'effect',
          params: effectInput(s.id, 0, true),
        };
        prev = `steps.${s.id}.id`; // the downstream answers { id: <log id> }
        return def;
      }
      case 'flaky': {
        const def = {
          id: s.id,
          type: 'transform',
          function: 'flaky',
          input: effectInput(s.id, s.ms, true),
          onError: 'retry',
          // Each process fails the first attempt it sees: a run whose step keeps landing on
          // fresh processes (kills) needs more than one retry. Backoffs past KEEL_SUSPEND_AFTER
          // (100ms in the harness) suspend the run: a durable wait that a kill must not lose.
          retries: 20,
          backoff: { initial: '150ms', max: '600ms', factor: 2 },
        };
        prev = `steps.${s.id}`;
        return def;
      }
      case 'expr':
        return {
          id: s.id,
          type: 'transform',
          expression: `input.n * 2 + ${s.add}`,
          storeAs: variable(s.id),
        };
      case 'branch': {
        const before = prev;
        const then = s.then.map(build);
        prev = before;
        const otherwise = s.else.map(build);
        prev = `steps.${s.id}`; // its branch's last output: the last effect's log id
        return {
          id: s.id,
          type: 'conditional',
          condition: `input.n > ${s.threshold}`,
          then,
          else: otherwise,
        };
      }
      case 'fail':
        return { id: s.id, type: 'transform', function: 'fail', input: { step: s.id } };
    }
  };
  const built = steps.map(build);
  // The last effect's result is observed by a final step, as every earlier one's is by the next.
  if (prev !== undefined)
    built.push({ id: 'seen', type: 'transform', function: 'seen', input: { prev: `{{${prev}}}` } });
  return { name, description: 'generated by the torture harness', steps: built };
}

/** What a run must answer and do. */
export interface DExpectation {
  /** The result's fields that the definition determines (docs/flows.md, "The result"). */
  result: {
    workflow: string;
    version: number;
    runId: string;
    success: boolean;
    status: 'completed' | 'compensated' | 'compensation_failed';
    data: unknown;
    outputs: Record<string, unknown>;
    results: unknown[];
    errors: Array<{ step: string; code: string; compensation?: true }>;
    failedStep?: string;
    compensated: string[];
  };
  /** Log ids whose body must have run (at least once) in an acknowledged run. */
  must: string[];
  /** Log ids that must have been attempted (`flake` lines count): compensations failing for good. */
  tried: string[];
  /** Log ids whose body must never run (branches not taken, steps after a failure, undos not owed). */
  never: string[];
  /** The `api` steps that ran: each request must carry `{invocationId}:{step}`. */
  api: Array<{ log: string; step: string }>;
  /**
   * Every compensation step of a top-level step, in definition order of their steps (so the
   * steps' compensations run in the reverse) and, within a step's `compensate` list, in list
   * order (the order they run in): its step id, the step's log id, its compensation's log id,
   * whether that compensation fails for good (`broken`), is never owed (a `continue` step's),
   * comes after a `broken` one in its list (`unreached`: it never runs), and whether its step
   * has a `timeout` (`timed`: a cancel landing while it is in flight owes its undo).
   */
  undos: Array<{
    step: string;
    stepLog: string;
    log: string;
    broken: boolean;
    neverOwed: boolean;
    unreached: boolean;
    timed: boolean;
  }>;
  /** Log ids of every forward step that logs (effects, branch effects, api, flaky, cont, timed, db). */
  forward: string[];
  /** Log ids of the `database` steps an answered run ran: each committed its row. */
  db: string[];
}

/** The run a definition computes for `input` (run id `runId`, version 1). */
export function expectRun(
  name: string,
  steps: DStep[],
  input: DInput,
  runId: string,
): DExpectation {
  const outputs: Record<string, unknown> = {};
  const results: unknown[] = [];
  const data: Record<string, unknown> = {};
  const must: string[] = [];
  const tried: string[] = [];
  const never: string[] = [];
  const owed: Array<{ id: string; undo: DUndos }> = [];
  const api: DExpectation['api'] = [];
  const errors: DExpectation['result']['errors'] = [];
  const undos: DExpectation['undos'] = [];
  const forward: string[] = [];
  const db: string[] = [];
  let failed: string | undefined;
  const log = (id: string): string => dLogId(input.tag, id);
  const done = (id: string, out: unknown): void => {
    outputs[id] = out;
    results.push(out);
  };
  const walk = (s: DStep): void => {
    if (s.kind === 'branch') return [...s.then, ...s.else].forEach(walk);
    if (s.kind !== 'expr' && s.kind !== 'fail') forward.push(log(s.id));
  };
  steps.forEach(walk);
  for (const s of steps) {
    if (s.kind !== 'effect' && s.kind !== 'timed' && s.kind !== 'cont') continue;
    let unreached = false;
    for (const u of undoItems(s.id, s.undo)) {
      undos.push({
        step: s.id,
        stepLog: log(s.id),
        log: log(u.id),
        broken: u.kind === 'broken',
        neverOwed: s.kind === 'cont',
        unreached,
        timed: s.kind === 'timed',
      });
      if (u.kind === 'broken') unreached = true;
    }
  }
  const forget = (s: DStep): void => {
    if (s.kind === 'branch') return [...s.then, ...s.else].forEach(forget);
    if (s.kind !== 'expr' && s.kind !== 'fail') never.push(log(s.id));
    if (s.kind === 'effect' || s.kind === 'timed' || s.kind === 'cont')
      for (const u of undoItems(s.id, s.undo)) never.push(log(u.id));
  };
  const step = (s: DStep): void => {
    if (failed !== undefined) return forget(s);
    switch (s.kind) {
      case 'effect':
      case 'flaky':
        must.push(log(s.id));
        if (s.kind === 'effect' && s.undo !== false) owed.push({ id: s.id, undo: s.undo });
        return done(s.id, log(s.id));
      case 'timed':
        // Its undo is registered before it runs: owed whether it completes or times out.
        if (s.undo !== false) owed.push({ id: s.id, undo: s.undo });
        if (s.late) {
          // Its body may or may not have begun (and runs on after the flow stopped waiting).
          failed = s.id;
          errors.push({ step: s.id, code: 'timeout' });
          return;
        }
        must.push(log(s.id));
        return done(s.id, log(s.id));
      case 'cont':
        must.push(log(s.id));
        errors.push({ step: s.id, code: 'step_failed' });
        for (const u of undoItems(s.id, s.undo)) never.push(log(u.id));
        return;
      case 'api':
        must.push(log(s.id));
        api.push({ log: log(s.id), step: s.id });
        return done(s.id, { id: log(s.id) });
      case 'db':
        must.push(log(s.id));
        db.push(log(s.id));
        return done(s.id, s.on === 'redis' ? 'OK' : { rows: [{ log: log(s.id) }], rowCount: 1 });
      case 'expr': {
        const v = input.n * 2 + s.add;
        data[variable(s.id)] = v;
        return done(s.id, v);
      }
      case 'branch': {
        const taken = input.n > s.threshold;
        (taken ? s.else : s.then).forEach(forget);
        const list = taken ? s.then : s.else;
        list.forEach(step);
        const last = list[list.length - 1];
        return done(s.id, last === undefined ? null : outputs[last.id]);
      }
      case 'fail':
        failed = s.id;
        errors.push({ step: s.id, code: 'step_failed' });
        return;
    }
  };
  steps.forEach(step);
  const compensated: string[] = [];
  let undoFailed = false;
  if (failed !== undefined) {
    for (const { id, undo } of [...owed].reverse()) {
      // A list runs in order; one failing for good ends it (and fails this step's undo).
      let broken = false;
      for (const { id: u, kind } of undoItems(id, undo)) {
        if (broken) {
          never.push(log(u));
          continue;
        }
        if (kind === 'broken') {
          tried.push(log(u));
          errors.push({ step: u, code: 'retries_exhausted', compensation: true });
          undoFailed = true;
          broken = true;
          continue;
        }
        must.push(log(u));
        if (kind === 'soft') errors.push({ step: u, code: 'step_failed', compensation: true });
        else done(u, log(u));
      }
      if (!broken) compensated.push(id);
    }
  } else {
    for (const { id, undo } of owed) for (const u of undoItems(id, undo)) never.push(log(u.id));
    if (must.length > 0) done('seen', null);
  }
  return {
    result: {
      workflow: name,
      version: 1,
      runId,
      success: errors.length === 0,
      status:
        failed === undefined ? 'completed' : undoFailed ? 'compensation_failed' : 'compensated',
      data,
      outputs,
      results,
      errors,
      ...(failed === undefined ? {} : { failedStep: failed }),
      compensated,
    },
    must,
    tried,
    never,
    api,
    undos,
    forward,
    db,
  };
}

/** The differences between an answered `WorkflowResult` and the expected one ('' if none). */
export function judgeResult(expected: DExpectation['result'], actual: any): string {
  if (actual === null || typeof actual !== 'object')
    return `not a result: ${JSON.stringify(actual)}`;
  const seen: Record<string, unknown> = {
    ...actual,
    errors: Array.isArray(actual.errors)
      ? actual.errors.map((e: { step: string; code: string; compensation?: boolean }) => ({
          step: e.step,
          code: e.code,
          ...(e.compensation === true ? { compensation: true } : {}),
        }))
      : actual.errors,
  };
  const wrong: string[] = [];
  if (typeof actual.invocationId !== 'string')
    wrong.push(`invocationId ${JSON.stringify(actual.invocationId)}, expected an id`);
  for (const [k, v] of Object.entries(expected)) {
    if (!isDeepStrictEqual(seen[k], v))
      wrong.push(`${k} ${JSON.stringify(seen[k])}, expected ${JSON.stringify(v)}`);
  }
  if (expected.failedStep === undefined && actual.failedStep !== undefined)
    wrong.push(`failedStep ${JSON.stringify(actual.failedStep)}, expected none`);
  return wrong.join('; ');
}

/** A run's state (`GET /flows/runs/{runId}`), as the checker read it once quiet. */
export interface DRunState {
  status?: string;
  completed?: string[];
  failed?: string[];
  compensated?: string[];
}

/** A flow run the workload started (whatever came of it), for the log check. */
export interface DRun {
  op: string;
  /** A definite answer came back (200 with the result, or 409 `cancelled`). */
  acked: boolean;
  expect: DExpectation;
  /** How it was started: the checker asks the same key again once quiet. */
  request: { path: string; headers: Record<string, string>; body: unknown };
  /** The first answer: every later one, the last included, must equal it. */
  first?: unknown;
  /** A cancel was sent for it (admin `POST /invocations/{id}/cancel`), answered or not. */
  cancelSent?: boolean;
  /** Its first answer was 409 `cancelled`: judged by its state against the log, not `expect`. */
  cancelled?: boolean;
  /** Its invocation id, from its result or (for a cancel) the admin API's list. */
  invocationId?: string;
  /** Its state once quiet (set by `checkFlowRuns`, read by `checkFlowEffects`). */
  state?: DRunState;
}

const stepOf = (log: string): string => log.slice(log.lastIndexOf('/') + 1);

/**
 * The effects in the execution log against the runs:
 * - an acknowledged run's steps (and owed compensations) each ran at least once, and each
 *   compensation that fails for good was attempted;
 * - no run ran a step of a branch it did not take, a step after its failing step, or a
 *   compensation it did not owe (acknowledged or not: a run, if it happened at all, happened
 *   as its definition says; a run sent a cancel may owe more compensations, so those are left
 *   to the cancelled-run check);
 * - every request of an `api` step reached the downstream with one Idempotency-Key,
 *   `{invocationId}:{step id}` of the answered run;
 * - compensations ran in reverse order of their steps, each done before the next began: no
 *   attempt of one after the first attempt of a compensation that comes after it (which would
 *   also be a compensation run again after it completed and the flow moved on);
 * - a cancelled run (answered 409 `cancelled`): its state is `cancelled`; every forward step
 *   that ran is one its state lists as completed, or the one the cancel reached (`failed`): no
 *   new forward step ran after the cancel; every step it lists as completed ran; its
 *   compensations are those of its completed steps, in reverse (its state's `compensated`, the
 *   `broken` ones left out), each attempted, and no other step's.
 */
export function checkFlowEffects(lines: LogLine[], runs: DRun[]): Problem[] {
  const started = new Set<string>();
  const keys = new Map<string, Set<string>>();
  /** Log positions of every attempt (`start`, `flake`, `api`) of a log id. */
  const attempts = new Map<string, number[]>();
  for (const l of lines) {
    if (l.kind === 'start' || l.kind === 'api') started.add(l.args[0]!);
    if (l.kind === 'start' || l.kind === 'api' || l.kind === 'flake') {
      const list = attempts.get(l.args[0]!) ?? [];
      list.push(l.seq);
      attempts.set(l.args[0]!, list);
    }
    if (l.kind === 'api') keys.set(l.args[0]!, (keys.get(l.args[0]!) ?? new Set()).add(l.args[1]!));
  }
  const problems: Problem[] = [];
  for (const run of runs) {
    const invocation = (run.first as { invocationId?: unknown } | undefined)?.invocationId;
    for (const { log, step } of run.expect.api) {
      const sent = [...(keys.get(log) ?? [])];
      const want = typeof invocation === 'string' ? `${invocation}:${step}` : undefined;
      if (sent.length > 1 || (want !== undefined && sent.length === 1 && sent[0] !== want))
        problems.push({
          invariant: 'an api step sends one idempotency key',
          detail: `${run.op}: step ${log} reached the downstream with Idempotency-Key ${sent.join(', ')}${want ? `, expected ${want}` : ''}`,
        });
    }
    const undoLogs = new Set(run.expect.undos.map((u) => u.log));
    for (const id of run.expect.never) {
      if (run.cancelSent && undoLogs.has(id)) continue;
      if (attempts.has(id))
        problems.push({
          invariant: 'a flow runs the steps its definition takes',
          detail: `${run.op}: step ${id} ran, but the run must not run it (branch not taken, after the failing step, or a compensation not owed)`,
        });
    }
    // Compensations in reverse order of their steps (a step's list in list order), one done
    // before the next begins.
    const ran = runOrder(run.expect.undos).filter((u) => attempts.has(u.log));
    for (let i = 1; i < ran.length; i++) {
      const before = ran[i - 1]!;
      const after = ran[i]!;
      const firstAfter = Math.min(...attempts.get(after.log)!);
      const late = attempts.get(before.log)!.filter((seq) => seq > firstAfter);
      if (late.length > 0)
        problems.push({
          invariant: 'compensations run in reverse order, each once done',
          detail: `${run.op}: compensation ${before.log} (of step ${before.step}) was attempted at log line ${late[0]} after ${after.log} (of the earlier step ${after.step}) began at ${firstAfter}`,
        });
    }
    if (run.cancelled) {
      problems.push(...checkCancelled(run, started, attempts));
      continue;
    }
    if (!run.acked) continue;
    const missing = run.expect.must.filter((id) => !started.has(id));
    const untried = run.expect.tried.filter((id) => !attempts.has(id));
    if (missing.length + untried.length > 0)
      problems.push({
        invariant: 'an acknowledged flow run did its steps',
        detail: `${run.op}: answered, but never ran ${[...missing, ...untried].join(', ')}`,
      });
  }
  return problems;
}

/**
 * The compensation steps in the order they run: the steps' in reverse definition order, each
 * step's `compensate` list in its own order.
 */
function runOrder(undos: DExpectation['undos']): DExpectation['undos'] {
  const steps = [...new Set(undos.map((u) => u.step))].reverse();
  return steps.flatMap((step) => undos.filter((u) => u.step === step));
}

/** The log of a run answered 409 `cancelled`, against its state (see `checkFlowEffects`). */
function checkCancelled(
  run: DRun,
  started: Set<string>,
  attempts: Map<string, number[]>,
): Problem[] {
  const problems: Problem[] = [];
  const fail = (detail: string): number =>
    problems.push({
      invariant: 'a cancelled flow run stops and compensates',
      detail: `${run.op}: ${detail}`,
    });
  const state = run.state;
  if (state === undefined) {
    // No state: the cancel reached the run before its first step (at its definition's read),
    // so nothing of it may have run.
    const ran = [...run.expect.forward, ...run.expect.undos.map((u) => u.log)].filter((l) =>
      attempts.has(l),
    );
    if (ran.length > 0) fail(`has no state (GET /flows/runs: 404), but ran ${ran.join(', ')}`);
    return problems;
  }
  if (state.status !== 'cancelled' || !Array.isArray(state.completed)) {
    fail(`answered 409 cancelled, but its state is ${JSON.stringify(state)}`);
    return problems;
  }
  const completed = new Set(state.completed);
  const reached = new Set([...completed, ...(state.failed ?? [])]);
  const beyond = run.expect.forward.filter((l) => attempts.has(l) && !reached.has(stepOf(l)));
  if (beyond.length > 0)
    fail(
      `ran ${beyond.join(', ')}, which its state lists neither as completed nor as the step the cancel reached (completed ${JSON.stringify(state.completed)}, failed ${JSON.stringify(state.failed)})`,
    );
  const unrun = run.expect.forward.filter((l) => completed.has(stepOf(l)) && !started.has(l));
  if (unrun.length > 0)
    fail(`its state lists ${unrun.map(stepOf).join(', ')} as completed, but they never ran`);
  // A step with a `timeout` that the cancel reached in flight (its state lists it as the failed
  // step) owes its undo once that undo's registration was journaled, which comes before its
  // body may begin: its body having begun proves it owed. A cancel that took the registration's
  // place owes nothing (and its body never begins); the log cannot tell that from a cancel just
  // after it, so then either is right: it owes its undo if the state lists it as compensated or
  // the log shows that undo attempted (and is then held to all the rest, below).
  const failed = new Set(state.failed ?? []);
  const cutInDoubt = new Set(
    run.expect.undos
      .filter((u) => u.timed && !completed.has(u.step) && failed.has(u.step))
      .map((u) => u.step),
  );
  const provenOwed = new Set(
    run.expect.undos
      .filter((u) => cutInDoubt.has(u.step) && attempts.has(u.stepLog))
      .map((u) => u.step),
  );
  const owesStep = (step: string): boolean =>
    completed.has(step) ||
    provenOwed.has(step) ||
    (cutInDoubt.has(step) &&
      ((state.compensated ?? []).includes(step) ||
        run.expect.undos.some((u) => u.step === step && attempts.has(u.log))));
  const owedSteps = run.expect.undos.filter((u) => !u.neverOwed && owesStep(u.step));
  const expected = [...new Set(owedSteps.map((u) => u.step))]
    .reverse()
    .filter((step) => !owedSteps.some((u) => u.step === step && u.broken));
  if (!isDeepStrictEqual(state.compensated, expected))
    fail(
      `its state says it compensated ${JSON.stringify(state.compensated)}, expected ${JSON.stringify(expected)} (its completed steps with a compensation, and a timed step the cancel reached after its body began, in reverse)`,
    );
  const owed = owedSteps.filter((u) => !u.unreached);
  const untried = owed.filter((u) => !attempts.has(u.log)).map((u) => u.log);
  if (untried.length > 0) fail(`never attempted the compensations ${untried.join(', ')}`);
  const extra = run.expect.undos
    .filter((u) => !owed.includes(u) && attempts.has(u.log))
    .map((u) => u.log);
  if (extra.length > 0) fail(`ran compensations it did not owe: ${extra.join(', ')}`);
  return problems;
}

/**
 * The rows of the `database` steps' table (log id → rows) against the log and the runs: a row
 * is written only by an execution of its step (no more rows than `start` lines of that log id:
 * a statement is not sent twice for one execution), every `database` step of a run answered
 * with its result committed its row (its output is that row, so it must be there), and no step
 * the run must not take wrote one.
 */
export function checkFlowRows(
  rows: Map<string, number>,
  lines: LogLine[],
  runs: DRun[],
): Problem[] {
  const starts = new Map<string, number>();
  for (const l of lines)
    if (l.kind === 'start') starts.set(l.args[0]!, (starts.get(l.args[0]!) ?? 0) + 1);
  const problems: Problem[] = [];
  for (const [log, n] of rows) {
    if (n > (starts.get(log) ?? 0))
      problems.push({
        invariant: 'a database step writes once per execution',
        detail: `${log}: ${n} rows, but ${starts.get(log) ?? 0} executions of the step`,
      });
  }
  for (const run of runs) {
    for (const log of run.expect.never)
      if (rows.has(log))
        problems.push({
          invariant: 'a flow runs the steps its definition takes',
          detail: `${run.op}: step ${log} wrote ${rows.get(log)} row(s) to the database, but the run must not run it`,
        });
    if (!run.acked || run.cancelled) continue;
    const missing = run.expect.db.filter((log) => !rows.has(log));
    if (missing.length > 0)
      problems.push({
        invariant: 'an acknowledged flow run did its steps',
        detail: `${run.op}: answered, but the database has no row of ${missing.join(', ')}`,
      });
  }
  return problems;
}

/**
 * Figures for the report: flow step executions (bodies started and downstream requests, by the
 * `D/<tag>/...` log ids), how many were executions again of one step (after a crash), the
 * planned failed attempts, and the runs that went on in another process than they began in
 * (resumed after a kill, or adopted): their steps' lines come from more than one app pid.
 */
export function flowStepFigures(lines: LogLine[]): {
  runs: number;
  again: number;
  flakes: number;
  resumed: number;
} {
  const seen = new Set<string>();
  const pids = new Map<string, Set<number>>();
  let runs = 0;
  let again = 0;
  let flakes = 0;
  for (const l of lines) {
    const id = l.args[0];
    if (!id?.startsWith('D/')) continue;
    if (l.kind === 'flake') flakes++;
    // Bodies only: the downstream's `api` and `ack` lines are the harness's (downstream.ts).
    if (l.kind === 'start' || l.kind === 'end' || l.kind === 'flake') {
      const tag = id.split('/')[1]!;
      pids.set(tag, (pids.get(tag) ?? new Set()).add(l.pid));
    }
    if (l.kind !== 'start' && l.kind !== 'api') continue;
    runs++;
    if (seen.has(id)) again++;
    seen.add(id);
  }
  const resumed = [...pids.values()].filter((p) => p.size > 1).length;
  return { runs, again, flakes, resumed };
}
