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
 */
import { isDeepStrictEqual } from 'node:util';
import type { LogLine } from './program.js';
import type { Problem } from './workload.js';

/** One step of a generated flow. */
export type DStep =
  /** A journaled effect (`effect` transform) pausing `ms`; `undo`: with a compensation. */
  | { kind: 'effect'; id: string; ms: number; undo: boolean }
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

/** The log id of a flow step of the run tagged `tag`. */
export const dLogId = (tag: string, step: string): string => `D/${tag}/${step}`;
const undoId = (step: string): string => `${step}u`;
const variable = (step: string): string => `v_${step}`;

/** The flow definition (JSON, as docs/flows.md describes) of a generated flow. */
export function buildDefinition(name: string, steps: DStep[]): Record<string, unknown> {
  /** The expression of the previous effect's log id, which the next effect logs as observed. */
  let prev: string | undefined;
  const build = (s: DStep): Record<string, unknown> => {
    const effectInput = (id: string, ms: number, withPrev: boolean): Record<string, unknown> => ({
      tag: '{{input.tag}}',
      step: id,
      ms,
      ...(withPrev && prev !== undefined ? { prev: `{{${prev}}}` } : {}),
    });
    switch (s.kind) {
      case 'effect': {
        const def = {
          id: s.id,
          type: 'transform',
          function: 'effect',
          input: effectInput(s.id, s.ms, true),
          ...(s.undo
            ? {
                compensate: {
                  id: undoId(s.id),
                  type: 'transform',
                  function: 'effect',
                  input: effectInput(undoId(s.id), 2, false),
                },
              }
            : {}),
        };
        prev = `steps.${s.id}`;
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
    status: 'completed' | 'compensated';
    data: unknown;
    outputs: Record<string, unknown>;
    results: unknown[];
    errors: Array<{ step: string; code: string }>;
    failedStep?: string;
    compensated: string[];
  };
  /** Log ids whose body must have run (at least once) in an acknowledged run. */
  must: string[];
  /** Log ids whose body must never run (branches not taken, steps after a failure, undos not owed). */
  never: string[];
  /** The `api` steps that ran: each request must carry `{invocationId}:{step}`. */
  api: Array<{ log: string; step: string }>;
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
  const never: string[] = [];
  const undos: string[] = [];
  const api: DExpectation['api'] = [];
  let failed: string | undefined;
  const log = (id: string): string => dLogId(input.tag, id);
  const done = (id: string, out: unknown): void => {
    outputs[id] = out;
    results.push(out);
  };
  const forget = (s: DStep): void => {
    if (s.kind === 'effect' || s.kind === 'flaky' || s.kind === 'api') never.push(log(s.id));
    if (s.kind === 'effect' && s.undo) never.push(log(undoId(s.id)));
    if (s.kind === 'branch') [...s.then, ...s.else].forEach(forget);
  };
  const step = (s: DStep): void => {
    if (failed !== undefined) return forget(s);
    switch (s.kind) {
      case 'effect':
      case 'flaky':
        must.push(log(s.id));
        if (s.kind === 'effect' && s.undo) undos.push(s.id);
        return done(s.id, log(s.id));
      case 'api':
        must.push(log(s.id));
        api.push({ log: log(s.id), step: s.id });
        return done(s.id, { id: log(s.id) });
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
        return;
    }
  };
  steps.forEach(step);
  const compensated: string[] = [];
  if (failed !== undefined) {
    for (const id of [...undos].reverse()) {
      must.push(log(undoId(id)));
      done(undoId(id), log(undoId(id)));
      compensated.push(id);
    }
  } else {
    for (const id of undos) never.push(log(undoId(id)));
    if (must.length > 0) done('seen', null);
  }
  return {
    result: {
      workflow: name,
      version: 1,
      runId,
      success: failed === undefined,
      status: failed === undefined ? 'completed' : 'compensated',
      data,
      outputs,
      results,
      errors: failed === undefined ? [] : [{ step: failed, code: 'step_failed' }],
      ...(failed === undefined ? {} : { failedStep: failed }),
      compensated,
    },
    must,
    never,
    api,
  };
}

/** The differences between an answered `WorkflowResult` and the expected one ('' if none). */
export function judgeResult(expected: DExpectation['result'], actual: any): string {
  if (actual === null || typeof actual !== 'object')
    return `not a result: ${JSON.stringify(actual)}`;
  const seen: Record<string, unknown> = {
    ...actual,
    errors: Array.isArray(actual.errors)
      ? actual.errors.map((e: { step: string; code: string }) => ({ step: e.step, code: e.code }))
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

/** A flow run the workload started (whatever came of it), for the log check. */
export interface DRun {
  op: string;
  /** An answer (200 with the result) came back: the run happened, so its effects must have. */
  acked: boolean;
  expect: DExpectation;
  /** How it was started: the checker asks the same key again once quiet. */
  request: { path: string; headers: Record<string, string>; body: unknown };
  /** The first answer: every later one, the last included, must equal it. */
  first?: unknown;
}

/**
 * The effects in the execution log against the runs: an acknowledged run's steps (and owed
 * compensations) each ran at least once; no run ran a step of a branch it did not take, a step
 * after its failing step, or a compensation it did not owe (acknowledged or not: a run, if it
 * happened at all, happened as its definition says); every request of an `api` step reached
 * the downstream with one Idempotency-Key, `{invocationId}:{step id}` of the answered run.
 */
export function checkFlowEffects(lines: LogLine[], runs: DRun[]): Problem[] {
  const started = new Set<string>();
  const keys = new Map<string, Set<string>>();
  for (const l of lines) {
    if (l.kind === 'start' || l.kind === 'api') started.add(l.args[0]!);
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
    for (const id of run.expect.never) {
      if (started.has(id))
        problems.push({
          invariant: 'a flow runs the steps its definition takes',
          detail: `${run.op}: step ${id} ran, but the run must not run it (branch not taken, after the failing step, or a compensation not owed)`,
        });
    }
    if (!run.acked) continue;
    const missing = run.expect.must.filter((id) => !started.has(id));
    if (missing.length > 0)
      problems.push({
        invariant: 'an acknowledged flow run did its steps',
        detail: `${run.op}: answered, but never ran ${missing.join(', ')}`,
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
