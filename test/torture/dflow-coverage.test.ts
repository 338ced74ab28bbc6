/**
 * The torture checker on what declarative flows do beyond their plain path (test/torture/dflow.ts):
 * `continue` steps, step timeouts, compensations that fail, `compensate` lists, cancelled runs
 * (some cut while a timed step is in flight), `database` steps on PostgreSQL, MariaDB and Redis.
 * Each invariant is shown catching a fabricated violation: a wrong answer, a bad execution log,
 * bad database rows, or (for what is read over HTTP once quiet) a real HTTP server answering as
 * a broken app would.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFlow } from '../../src/flows/index.js';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { analyzeLog, checkFlowRuns } from './checker.js';
import type { Cluster } from './cluster.js';
import {
  buildDefinition,
  checkFlowEffects,
  checkFlowRows,
  expectRun,
  FLOW_DB,
  FLOW_MYSQL,
  FLOW_REDIS,
  judgeResult,
  type DDb,
  type DRun,
  type DRunState,
  type DStep,
} from './dflow.js';
import { generateOp } from './generator.js';
import { parseLog } from './program.js';
import { dropFlowTable, flowDatabases, readFlowRows } from './runner.js';
import { Ledger } from './workload.js';

/** An execution log from `pid kind args...` lines (timestamps do not matter to the checker). */
const log = (...lines: string[]): ReturnType<typeof parseLog> =>
  parseLog(lines.map((l, i) => `${1000 + i} ${l}\n`).join(''));

const input = { tag: 'd7', n: 6 };
const run = (steps: DStep[], more: Partial<DRun> = {}): DRun => ({
  op: 'flow run f d7',
  acked: true,
  expect: expectRun('f', steps, input, 'f:d7'),
  request: { path: '/flows/f/run?id=d7', headers: {}, body: input },
  ...more,
});
const invariants = (problems: Array<{ invariant: string }>): string[] =>
  problems.map((p) => p.invariant);
/** A result as the app answers it: the expectation plus what the definition does not fix. */
const answer = (r: DRun) => ({
  ...r.expect.result,
  invocationId: 'inv_1',
  duration: 3,
  startedAt: 'x',
  endedAt: 'y',
});

describe('the torture checker on onError: continue', () => {
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: true },
    { kind: 'cont', id: 's1', undo: true },
    { kind: 'expr', id: 's2', add: 1 },
  ];

  it('expects the error recorded, the flow gone on, nothing stored, no compensation owed', () => {
    const r = run(steps);
    expect(r.expect.result).toMatchObject({
      status: 'completed',
      success: false,
      errors: [{ step: 's1', code: 'step_failed' }],
      data: { v_s2: 13 },
      outputs: { s0: 'D/d7/s0', s2: 13, seen: null },
      compensated: [],
    });
    expect(r.expect.result.failedStep).toBeUndefined();
    expect(r.expect.must).toEqual(['D/d7/s0', 'D/d7/s1']);
    expect(r.expect.never).toEqual(['D/d7/s1u', 'D/d7/s0u']);
    expect(judgeResult(r.expect.result, answer(r))).toBe('');
    // The failure stopping the flow, or storing its variable, or counting as success.
    const bad = answer(r);
    expect(judgeResult(r.expect.result, { ...bad, status: 'compensated' })).toMatch(/status/);
    expect(judgeResult(r.expect.result, { ...bad, data: { v_s1: null, v_s2: 13 } })).toMatch(
      /^data/,
    );
    expect(judgeResult(r.expect.result, { ...bad, success: true })).toMatch(/^success/);
  });

  it('reports a continued step that never ran, or whose compensation ran', () => {
    const r = run(steps);
    const good = log('1 start D/d7/s0', '1 ack D/d7/s0', '1 start D/d7/s1', '1 ack D/d7/s1');
    expect(checkFlowEffects(good, [r])).toEqual([]);
    expect(invariants(checkFlowEffects(log('1 start D/d7/s0'), [r]))).toEqual([
      'an acknowledged flow run did its steps',
    ]);
    expect(
      invariants(
        checkFlowEffects(log('1 start D/d7/s0', '1 start D/d7/s1', '1 start D/d7/s1u'), [r]),
      ),
    ).toEqual(['a flow runs the steps its definition takes']);
  });
});

describe('the torture checker on step timeouts', () => {
  const steps = (late: boolean): DStep[] => [
    { kind: 'effect', id: 's0', ms: 0, undo: true },
    {
      kind: 'timed',
      id: 's1',
      ms: late ? 3000 : 0,
      timeoutMs: late ? 100 : 60_000,
      late,
      undo: true,
    },
    { kind: 'effect', id: 's2', ms: 0, undo: false },
  ];

  it('expects a late step to fail the flow with timeout and be compensated first, itself included', () => {
    const r = run(steps(true));
    expect(r.expect.result).toMatchObject({
      status: 'compensated',
      failedStep: 's1',
      errors: [{ step: 's1', code: 'timeout' }],
      compensated: ['s1', 's0'],
      outputs: { s0: 'D/d7/s0', s1u: 'D/d7/s1u', s0u: 'D/d7/s0u' },
    });
    // Its body may or may not have begun: neither required nor forbidden.
    expect(r.expect.must).toEqual(['D/d7/s0', 'D/d7/s1u', 'D/d7/s0u']);
    expect(r.expect.never).toEqual(['D/d7/s2']);
    // Not compensating the timed-out step (an undo owed only on success) is caught.
    const wrong = { ...answer(r), compensated: ['s0'] };
    expect(judgeResult(r.expect.result, wrong)).toMatch(/^compensated/);
    expect(invariants(checkFlowEffects(log('1 start D/d7/s0', '1 start D/d7/s0u'), [r]))).toEqual([
      'an acknowledged flow run did its steps',
    ]);
    // The flow going on after the timeout is caught.
    const on = log(
      '1 start D/d7/s0',
      '1 start D/d7/s1',
      '1 start D/d7/s2',
      '1 start D/d7/s1u',
      '1 start D/d7/s0u',
    );
    expect(invariants(checkFlowEffects(on, [r]))).toEqual([
      'a flow runs the steps its definition takes',
    ]);
  });

  it('expects a step within its timeout to complete, its undo owed only if the flow fails', () => {
    const r = run(steps(false));
    expect(r.expect.result).toMatchObject({ status: 'completed', success: true, errors: [] });
    expect(r.expect.never).toEqual(['D/d7/s0u', 'D/d7/s1u']);
  });
});

describe('the torture checker on compensations that fail', () => {
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: 'flaky' },
    { kind: 'effect', id: 's1', ms: 0, undo: 'broken' },
    { kind: 'effect', id: 's2', ms: 0, undo: 'soft' },
    { kind: 'fail', id: 'boom' },
  ];
  const lines = [
    '1 start D/d7/s0',
    '1 start D/d7/s1',
    '1 start D/d7/s2',
    '1 start D/d7/s2u',
    '1 flake D/d7/s1u',
    '1 flake D/d7/s1u',
    '1 flake D/d7/s0u',
    '1 start D/d7/s0u',
  ];

  it('expects compensation_failed, each failure once in errors under the compensation’s id', () => {
    const r = run(steps);
    expect(r.expect.result).toMatchObject({
      status: 'compensation_failed',
      success: false,
      failedStep: 'boom',
      compensated: ['s2', 's0'],
      errors: [
        { step: 'boom', code: 'step_failed' },
        { step: 's2u', code: 'step_failed', compensation: true },
        { step: 's1u', code: 'retries_exhausted', compensation: true },
      ],
    });
    expect(judgeResult(r.expect.result, answer(r))).toBe('');
    // What Keel answered before test/flows/undo-failure-cancel.test.ts: the failure twice.
    const twice = {
      ...answer(r),
      errors: [
        ...r.expect.result.errors,
        { step: 's1', code: 'flow_step_failed', message: 'x', compensation: true },
      ],
    };
    expect(judgeResult(r.expect.result, twice)).toMatch(/^errors/);
  });

  it('reports a compensation failing for good that was never attempted', () => {
    const r = run(steps);
    expect(checkFlowEffects(log(...lines), [r])).toEqual([]);
    const p = checkFlowEffects(log(...lines.filter((l) => !l.endsWith('s1u'))), [r]);
    expect(invariants(p)).toEqual(['an acknowledged flow run did its steps']);
    expect(p[0]!.detail).toContain('D/d7/s1u');
  });

  it('reports compensations out of reverse order, or one attempted again after the next began', () => {
    const r = run(steps);
    // s0's compensation before s1's (s1 is later, so its undo comes first).
    const early = [
      '1 start D/d7/s0',
      '1 start D/d7/s1',
      '1 start D/d7/s2',
      '1 start D/d7/s2u',
      '1 start D/d7/s0u',
      '1 flake D/d7/s1u',
      '1 flake D/d7/s1u',
    ];
    expect(invariants(checkFlowEffects(log(...early), [r]))).toEqual([
      'compensations run in reverse order, each once done',
    ]);
    // s2's compensation run again (even after a kill) once s1's had begun: it had completed.
    const again = [...lines.slice(0, 5), '0 kill 1', '2 start D/d7/s2u', ...lines.slice(5)];
    expect(invariants(checkFlowEffects(log(...again), [r]))).toEqual([
      'compensations run in reverse order, each once done',
    ]);
  });
});

describe('the torture checker on cancelled flow runs', () => {
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: true },
    { kind: 'effect', id: 's1', ms: 200, undo: 'broken' },
    { kind: 'flaky', id: 's2', ms: 0 },
    { kind: 'effect', id: 's3', ms: 0, undo: true },
  ];
  const cancelled = (state: DRunState | undefined): DRun =>
    run(steps, {
      cancelSent: true,
      cancelled: true,
      first: { code: 'cancelled' },
      invocationId: 'inv_1',
      ...(state === undefined ? {} : { state }),
    });
  /** Cancelled while s2 waited in its backoff: s0 and s1 compensated (s1's for good failing). */
  const state: DRunState = {
    status: 'cancelled',
    completed: ['s0', 's1'],
    failed: ['s2'],
    compensated: ['s0'],
  };
  const lines = [
    '1 start D/d7/s0',
    '1 start D/d7/s1',
    '1 flake D/d7/s2',
    '1 flake D/d7/s1u',
    '1 flake D/d7/s1u',
    '1 start D/d7/s0u',
  ];

  it('accepts a run that stopped at the step the cancel reached and undid its completed steps', () => {
    expect(checkFlowEffects(log(...lines), [cancelled(state)])).toEqual([]);
    // Cancelled before its first step: no state, nothing ran.
    expect(checkFlowEffects(log(), [cancelled(undefined)])).toEqual([]);
    // Not cancelled in the end (answered with its result): the undos it may owe are not "never".
    const sent = run(steps, { cancelSent: true });
    expect(checkFlowEffects(log('1 start D/d7/s0', '1 start D/d7/s0u'), [sent])).toEqual([
      expect.objectContaining({ invariant: 'an acknowledged flow run did its steps' }),
    ]);
  });

  const bad: Array<[string, string[], DRunState | undefined]> = [
    ['a forward step after the cancel', [...lines, '1 start D/d7/s3'], state],
    ['a completed step that never ran', lines.filter((l) => l !== '1 start D/d7/s1'), state],
    [
      'a compensation owed but never attempted',
      lines.filter((l) => l !== '1 start D/d7/s0u'),
      state,
    ],
    ['a compensation not owed', [...lines, '1 start D/d7/s3u'], state],
    ['its state not cancelled', lines, { ...state, status: 'compensating' }],
    ['its state compensated out of order', lines, { ...state, completed: ['s0', 's1', 's3'] }],
    ['no state, but steps ran', ['1 start D/d7/s0'], undefined],
  ];
  for (const [what, l, s] of bad)
    it(`reports ${what}`, () => {
      expect(invariants(checkFlowEffects(log(...l), [cancelled(s)]))).toContain(
        'a cancelled flow run stops and compensates',
      );
    });
});

describe('the torture checker on compensate lists', () => {
  // s0 undone by a list that goes on past a failure; s1 by one whose second step fails for good.
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: [true, 'soft', 'flaky'] },
    { kind: 'effect', id: 's1', ms: 0, undo: [true, 'broken', true] },
    { kind: 'fail', id: 'boom' },
  ];
  const lines = [
    '1 start D/d7/s0',
    '1 start D/d7/s1',
    '1 start D/d7/s1u0',
    '1 flake D/d7/s1u1',
    '1 flake D/d7/s1u1',
    '1 start D/d7/s0u0',
    '1 start D/d7/s0u1',
    '1 flake D/d7/s0u2',
    '1 start D/d7/s0u2',
  ];

  it('builds the list, and expects it run in order, ended by a step failing for good', () => {
    const def = buildDefinition('f', steps) as { steps: Array<Record<string, any>> };
    expect(def.steps[0]!.compensate.map((c: { id: string }) => c.id)).toEqual([
      's0u0',
      's0u1',
      's0u2',
    ]);
    expect(def.steps[1]!.compensate[1]).toMatchObject({ function: 'broken', onError: 'retry' });
    const r = run(steps);
    // What Keel does (src/flows/execute.ts, `undoList`): s1's list stops at s1u1, s0's goes
    // on past s0u1 (`continue`), so s0 counts as compensated and s1 does not.
    expect(r.expect.result).toMatchObject({
      status: 'compensation_failed',
      compensated: ['s0'],
      errors: [
        { step: 'boom', code: 'step_failed' },
        { step: 's1u1', code: 'retries_exhausted', compensation: true },
        { step: 's0u1', code: 'step_failed', compensation: true },
      ],
      results: ['D/d7/s0', 'D/d7/s1', 'D/d7/s1u0', 'D/d7/s0u0', 'D/d7/s0u2'],
    });
    expect(r.expect.never).toEqual(['D/d7/s1u2']);
    expect(r.expect.must).toEqual(
      expect.arrayContaining(['D/d7/s1u0', 'D/d7/s0u0', 'D/d7/s0u1', 'D/d7/s0u2']),
    );
    expect(r.expect.tried).toEqual(['D/d7/s1u1']);
    expect(judgeResult(r.expect.result, answer(r))).toBe('');
    expect(judgeResult(r.expect.result, { ...answer(r), compensated: ['s1', 's0'] })).toMatch(
      /^compensated/,
    );
    expect(checkFlowEffects(log(...lines), [run(steps)])).toEqual([]);
  });

  const misorders: Array<[string, string[]]> = [
    // Within s0's list: s0u1 before s0u0.
    [
      'a list out of its order',
      [...lines.slice(0, 5), '1 start D/d7/s0u1', '1 start D/d7/s0u0', ...lines.slice(7)],
    ],
    // s0u0 attempted again (after a kill, too) once s0u1 had begun: it had completed.
    [
      'a list step again once the next began',
      [...lines.slice(0, 7), '0 kill 1', ...lines.slice(5)],
    ],
    // s0's list begun before s1's ended.
    ['a list begun before the later step’s', ['1 start D/d7/s0u0', ...lines]],
  ];
  for (const [what, l] of misorders)
    it(`reports ${what}`, () => {
      expect(invariants(checkFlowEffects(log(...l), [run(steps)]))).toContain(
        'compensations run in reverse order, each once done',
      );
    });

  it('reports a list step after one failing for good, or one of an owed list never run', () => {
    const past = [...lines.slice(0, 5), '1 start D/d7/s1u2', ...lines.slice(5)];
    expect(invariants(checkFlowEffects(log(...past), [run(steps)]))).toEqual([
      'a flow runs the steps its definition takes',
    ]);
    const p = checkFlowEffects(log(...lines.filter((l) => !l.endsWith('s0u1'))), [run(steps)]);
    expect(invariants(p)).toEqual(['an acknowledged flow run did its steps']);
    expect(p[0]!.detail).toContain('D/d7/s0u1');
  });

  it('reports a completed list step run twice with no crash to excuse it', () => {
    const once = log(
      ...lines.map((l) => l.replace(/^1 start (\S+)$/, '1 start $1\n1 end $1\n1 ack $1')),
    );
    expect(invariants(analyzeLog(once).problems)).toEqual([]);
    // s0u0 executed again right after it completed, in the same process: no kill, no outage.
    const twice = [...lines.slice(0, 6), '1 end D/d7/s0u0', '1 start D/d7/s0u0', ...lines.slice(6)];
    expect(invariants(analyzeLog(log(...twice)).problems)).toEqual([
      'a step re-runs only if a crash cut it',
    ]);
    const excused = [...lines.slice(0, 6), '0 kill 1', '2 start D/d7/s0u0', ...lines.slice(6)];
    expect(invariants(analyzeLog(log(...excused)).problems)).toEqual([]);
  });

  it('holds a cancelled run’s state to its lists: the step whose list failed for good is not compensated', () => {
    const cancelled = (state: DRunState): DRun =>
      run(steps.slice(0, 2), {
        cancelSent: true,
        cancelled: true,
        first: { code: 'cancelled' },
        invocationId: 'inv_1',
        state,
      });
    const state = { status: 'cancelled', completed: ['s0', 's1'], compensated: ['s0'] };
    expect(checkFlowEffects(log(...lines), [cancelled(state)])).toEqual([]);
    for (const [l, s] of [
      [lines, { ...state, compensated: ['s1', 's0'] }],
      [[...lines, '1 start D/d7/s1u2'], state],
      [lines.filter((l) => !l.endsWith('s0u2')), state],
    ] as Array<[string[], DRunState]>)
      expect(invariants(checkFlowEffects(log(...l), [cancelled(s)]))).toContain(
        'a cancelled flow run stops and compensates',
      );
  });
});

describe('the torture checker on a cancel reaching a step with a timeout', () => {
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: true },
    { kind: 'timed', id: 's1', ms: 800, timeoutMs: 60_000, late: false, undo: [true, 'flaky'] },
    { kind: 'effect', id: 's2', ms: 0, undo: true },
  ];
  const cancelled = (state: DRunState): DRun =>
    run(steps, {
      cancelSent: true,
      cancelled: true,
      first: { code: 'cancelled' },
      invocationId: 'inv_1',
      state,
    });
  /** What Keel leaves when the cancel lands while s1's body runs: s1 undone too, first. */
  const state: DRunState = {
    status: 'cancelled',
    completed: ['s0'],
    failed: ['s1'],
    compensated: ['s1', 's0'],
  };
  const lines = [
    '1 start D/d7/s0',
    '1 start D/d7/s1',
    '1 start D/d7/s1u0',
    '1 flake D/d7/s1u1',
    '1 start D/d7/s1u1',
    '1 start D/d7/s0u',
    '1 end D/d7/s1',
  ];

  it('accepts the cut step compensated first, its body running on; or, cut before its body began, either', () => {
    expect(checkFlowEffects(log(...lines), [cancelled(state)])).toEqual([]);
    // The cancel took the registration's place: nothing of s1 ran, s1 not compensated.
    const early = { ...state, compensated: ['s0'] };
    expect(
      checkFlowEffects(log('1 start D/d7/s0', '1 start D/d7/s0u'), [cancelled(early)]),
    ).toEqual([]);
    // ...or just after it: s1's body never began, but its undo was owed and ran.
    const after = log('1 start D/d7/s0', ...lines.slice(2, 6));
    expect(checkFlowEffects(after, [cancelled(state)])).toEqual([]);
  });

  const bad: Array<[string, string[], DRunState]> = [
    [
      'the cut step’s body began, but its undo is not in the state',
      ['1 start D/d7/s0', '1 start D/d7/s1', '1 start D/d7/s0u'],
      { ...state, compensated: ['s0'] },
    ],
    [
      'the cut step’s body began, but its undo never ran',
      lines.filter((l) => !/s1u/.test(l)),
      state,
    ],
    ['the cut step not compensated first', lines, { ...state, compensated: ['s0', 's1'] }],
    [
      'its undo ran, but the state has it neither compensated nor failed',
      lines,
      { ...state, failed: [], compensated: ['s0'] },
    ],
    ['a forward step after the cut one', [...lines, '1 start D/d7/s2'], state],
  ];
  for (const [what, l, s] of bad)
    it(`reports ${what}`, () => {
      expect(invariants(checkFlowEffects(log(...l), [cancelled(s)]))).toContain(
        'a cancelled flow run stops and compensates',
      );
    });

  it('reports the cut step’s undo run after the earlier step’s', () => {
    const late = [...lines.slice(0, 2), '1 start D/d7/s0u', ...lines.slice(2, 5)];
    expect(invariants(checkFlowEffects(log(...late), [cancelled(state)]))).toEqual([
      'compensations run in reverse order, each once done',
    ]);
  });

  it('reports the cut step’s body run again after the cancel, unless a crash cut it', () => {
    const body = [
      '1 start D/d7/s0',
      '1 end D/d7/s0',
      '1 ack D/d7/s0',
      '1 start D/d7/s1',
      '1 start D/d7/s1u0',
      '1 end D/d7/s1u0',
    ];
    expect(invariants(analyzeLog(log(...body, '1 end D/d7/s1')).problems)).toEqual([]);
    // The body started again in the same process once the run compensated (the attempt ended).
    expect(
      invariants(analyzeLog(log(...body, '1 start D/d7/s1', '1 end D/d7/s1')).problems),
    ).toEqual(['a step re-runs only if a crash cut it']);
    expect(
      invariants(analyzeLog(log(...body, '0 kill 1', '2 start D/d7/s1', '2 end D/d7/s1')).problems),
    ).toEqual([]);
  });
});

describe('the torture checker on flow runs read once quiet (over HTTP)', () => {
  /** What the fabricated app answers: path → [status, body]. */
  let answers = new Map<string, [number, unknown]>();
  let server: Server;
  let cluster: Cluster;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const [status, body] = answers.get(`${req.method} ${req.url}`) ?? [404, { code: 'no' }];
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    cluster = { live: () => [{ pid: 1, url, admin: url }] } as unknown as Cluster;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const check = async (r: DRun): Promise<string[]> => {
    const ledger = new Ledger();
    ledger.dflows.push(r);
    return invariants(await checkFlowRuns(cluster, ledger));
  };

  it('reports a state whose failed steps are not the continued ones and the one that stopped it', async () => {
    const r = run([
      { kind: 'cont', id: 's0', undo: false },
      { kind: 'effect', id: 's1', ms: 0, undo: true },
      { kind: 'fail', id: 'boom' },
    ]);
    r.first = answer(r);
    const state = {
      status: 'compensated',
      completed: ['s1'],
      failed: ['s0', 'boom'],
      compensated: ['s1'],
    };
    answers = new Map<string, [number, unknown]>([
      ['POST /flows/f/run?id=d7', [200, r.first]],
      ['GET /flows/runs/f%3Ad7', [200, { runId: 'f:d7', ...state }]],
    ]);
    expect(await check(r)).toEqual([]);
    expect(r.state?.failed).toEqual(['s0', 'boom']);
    answers.set('GET /flows/runs/f%3Ad7', [200, { ...state, failed: ['boom'] }]);
    expect(await check(r)).toEqual(['flow run state agrees with its result']);
  });

  it('reports a cancelled run that answers otherwise later, or whose invocation did not fail cancelled', async () => {
    const r = run([{ kind: 'effect', id: 's0', ms: 0, undo: true }], {
      cancelSent: true,
      cancelled: true,
      first: { code: 'cancelled', message: 'the invocation was cancelled' },
      invocationId: 'inv_1',
    });
    answers = new Map<string, [number, unknown]>([
      ['POST /flows/f/run?id=d7', [409, r.first]],
      ['GET /flows/runs/f%3Ad7', [200, { status: 'cancelled', completed: [], compensated: [] }]],
      ['GET /invocations/inv_1', [200, { status: 'failed', error: { code: 'cancelled' } }]],
    ]);
    expect(await check(r)).toEqual([]);
    expect(r.state?.status).toBe('cancelled');
    answers.set('GET /invocations/inv_1', [200, { status: 'completed' }]);
    expect(await check(r)).toEqual(['a cancelled flow run stops and compensates']);
    answers.set('GET /invocations/inv_1', [
      200,
      { status: 'failed', error: { code: 'cancelled' } },
    ]);
    answers.set('POST /flows/f/run?id=d7', [200, answer(r)]);
    expect(await check(r)).toEqual(['a flow run key answers one run']);
  });
});

describe('the torture checker on database steps', () => {
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: false },
    { kind: 'db', id: 's1' },
    { kind: 'effect', id: 's2', ms: 0, undo: false },
  ];
  const withFail: DStep[] = [steps[0]!, { kind: 'fail', id: 'boom' }, steps[1]!];

  it('expects the inserted row as the output, the next step reading it', () => {
    const r = run(steps);
    expect(r.expect.result.outputs.s1).toEqual({ rows: [{ log: 'D/d7/s1' }], rowCount: 1 });
    expect(r.expect.db).toEqual(['D/d7/s1']);
    const def = buildDefinition('f', steps, 'tbl') as { steps: Array<Record<string, unknown>> };
    expect(def.steps[1]).toMatchObject({
      type: 'database',
      query: 'INSERT INTO tbl (log, prev) VALUES ($1, $2) RETURNING log',
      params: ['D/{{input.tag}}/s1', '{{steps.s0}}'],
    });
    expect(def.steps[2]).toMatchObject({ input: { prev: '{{steps.s1.rows[0].log}}' } });
    expect(() => buildDefinition('f', steps)).toThrow(/needs a table/);
  });

  it('reports a missing row, a row more than the executions, and a row of a step not taken', () => {
    const lines = log('1 start D/d7/s0', '1 start D/d7/s1', '1 end D/d7/s1', '1 start D/d7/s2');
    const rows = (n: number) => new Map([['D/d7/s1', n]]);
    expect(checkFlowRows(rows(1), lines, [run(steps)])).toEqual([]);
    expect(invariants(checkFlowRows(new Map(), lines, [run(steps)]))).toEqual([
      'an acknowledged flow run did its steps',
    ]);
    // Unanswered, or cancelled: its row need not be there.
    expect(checkFlowRows(new Map(), lines, [run(steps, { acked: false })])).toEqual([]);
    expect(invariants(checkFlowRows(rows(2), lines, [run(steps)]))).toEqual([
      'a database step writes once per execution',
    ]);
    const twice = log('1 start D/d7/s1', '0 kill 1', '2 start D/d7/s1');
    expect(checkFlowRows(rows(2), twice, [run(steps)])).toEqual([]);
    expect(invariants(checkFlowRows(rows(1), lines, [run(withFail, { acked: false })]))).toEqual([
      'a flow runs the steps its definition takes',
    ]);
  });
});

describe('the torture checker on MariaDB and Redis database steps', () => {
  const steps: DStep[] = [
    { kind: 'effect', id: 's0', ms: 0, undo: false },
    { kind: 'db', id: 's1', on: 'mysql' },
    { kind: 'db', id: 's2', on: 'redis' },
    { kind: 'effect', id: 's3', ms: 0, undo: false },
  ];

  it('builds a MariaDB query with ? placeholders and a Redis command, and expects their outputs', () => {
    const def = buildDefinition('f', steps, 'tbl') as { steps: Array<Record<string, unknown>> };
    expect(def.steps[1]).toMatchObject({
      type: 'database',
      database: 'tortureMy',
      query: 'INSERT INTO tbl (log, prev) VALUES (?, ?) RETURNING log',
      params: ['D/{{input.tag}}/s1', '{{steps.s0}}'],
    });
    expect(def.steps[2]).toMatchObject({
      type: 'database',
      database: 'tortureKv',
      command: 'EVAL',
      args: [
        expect.stringContaining('RPUSH'),
        1,
        'tbl:D/{{input.tag}}/s2',
        '{{steps.s1.rows[0].log}}',
      ],
    });
    // Redis answers OK: the next step acknowledges the step's log id.
    expect(def.steps[3]).toMatchObject({ input: { prev: "{{'D/' + input.tag + '/s2'}}" } });
    const r = run(steps);
    expect(r.expect.result.outputs).toMatchObject({
      s1: { rows: [{ log: 'D/d7/s1' }], rowCount: 1 },
      s2: 'OK',
    });
    expect(r.expect.db).toEqual(['D/d7/s1', 'D/d7/s2']);
    // A Redis reply of the list's length (what RPUSH alone answers) is not the output expected.
    expect(
      judgeResult(r.expect.result, {
        ...answer(r),
        outputs: { ...r.expect.result.outputs, s2: 1 },
      }),
    ).toMatch(/^outputs/);
  });

  it('reports a missing MariaDB row or Redis entry, and more entries than executions', () => {
    const lines = log('1 start D/d7/s0', '1 start D/d7/s1', '1 start D/d7/s2', '1 start D/d7/s3');
    const rows = (my: number, kv: number) =>
      new Map(
        [
          ['D/d7/s1', my],
          ['D/d7/s2', kv],
        ].filter(([, n]) => (n as number) > 0) as Array<[string, number]>,
      );
    expect(checkFlowRows(rows(1, 1), lines, [run(steps)])).toEqual([]);
    for (const [my, kv] of [
      [0, 1],
      [1, 0],
    ])
      expect(invariants(checkFlowRows(rows(my!, kv!), lines, [run(steps)]))).toEqual([
        'an acknowledged flow run did its steps',
      ]);
    expect(invariants(checkFlowRows(rows(1, 2), lines, [run(steps)]))).toEqual([
      'a database step writes once per execution',
    ]);
  });
});

describe('the databases of database steps (real servers)', () => {
  it('skips each unreachable database with a printed reason, and runs without any', async () => {
    const said: string[] = [];
    const dbs = await flowDatabases(
      {
        pg: 'postgres://postgres@127.0.0.1:1/test',
        mysql: 'mysql://root@127.0.0.1:1/test',
        redis: 'redis://127.0.0.1:1',
      },
      'cov',
      false,
      (l) => said.push(l),
    );
    expect(dbs).toBeUndefined();
    expect(said).toEqual([
      expect.stringMatching(/^ {2}SKIPPED PostgreSQL database steps in flows: .*unreachable/),
      expect.stringMatching(/^ {2}SKIPPED MariaDB database steps in flows: .*unreachable/),
      expect.stringMatching(/^ {2}SKIPPED Redis database steps in flows: .*unreachable/),
    ]);
  });

  it('counts the rows each database holds per log id, and drops them all', async () => {
    const said: string[] = [];
    const dbs = await flowDatabases(
      {
        pg: process.env.KEEL_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
        mysql: process.env.KEEL_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
        redis: process.env.KEEL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      },
      'cov',
      false,
      (l) => said.push(l),
    );
    // What this machine lacks is said, as the harness says it, and left out.
    for (const line of said) console.log(`database steps test: ${line.trim()}`);
    expect(said.length + (dbs?.kinds.length ?? 0)).toBe(3);
    if (dbs === undefined) return;
    try {
      if (dbs.pg) {
        const c = new pg.Client({ connectionString: dbs.pg });
        await c.connect();
        await c.query(FLOW_DB.insert(dbs.table), ['D/c/pg', null]);
        await c.query(FLOW_DB.insert(dbs.table), ['D/c/pg', 'D/c/x']);
        await c.end();
      }
      if (dbs.mysql) {
        const c = await mysql.createConnection({ uri: dbs.mysql });
        await c.query(FLOW_MYSQL.insert(dbs.table), ['D/c/my', null]);
        await c.end();
      }
      if (dbs.redis) {
        const r = new Redis(dbs.redis);
        for (const prev of ['none', 'D/c/my'])
          expect(
            await r.eval(FLOW_REDIS.script, 1, FLOW_REDIS.key(dbs.table, 'D/c/kv'), prev),
          ).toBe('OK');
        r.disconnect();
      }
      const byKind: Partial<Record<DDb, number>> = {};
      const rows = await readFlowRows(dbs, byKind);
      const want = new Map<string, number>([
        ...(dbs.pg ? ([['D/c/pg', 2]] as const) : []),
        ...(dbs.mysql ? ([['D/c/my', 1]] as const) : []),
        ...(dbs.redis ? ([['D/c/kv', 2]] as const) : []),
      ]);
      expect(rows).toEqual(want);
      expect(Object.keys(byKind).sort()).toEqual([...dbs.kinds].sort());
    } finally {
      await dropFlowTable(dbs);
    }
    expect(await readFlowRows({ ...dbs, pg: undefined, mysql: undefined }, {})).toEqual(new Map());
  });
});

describe('the torture generator', () => {
  it('generates only definitions the flows validation accepts, every new kind among them', () => {
    const env = {
      transforms: new Set(['effect', 'flaky', 'fail', 'failx', 'broken', 'seen']),
      integrations: new Map([['Downstream', new Set(['effect'])]]),
      databases: new Map<string, 'sql' | 'redis'>([
        ['tortureDb', 'sql'],
        ['tortureMy', 'sql'],
        ['tortureKv', 'redis'],
      ]),
    };
    const kinds = new Set<string>();
    let cancels = 0;
    let defs = 0;
    for (let n = 0; defs < 300; n++) {
      const op = generateOp('dflow-coverage', n, { databases: ['pg', 'mysql', 'redis'] });
      if (op.kind !== 'dflow' || !op.register) continue;
      defs++;
      if (op.cancelAfterMs !== undefined) cancels++;
      for (const s of op.steps) {
        kinds.add(s.kind === 'timed' ? `timed ${s.late ? 'late' : 'fast'}` : s.kind);
        if (s.kind === 'db') kinds.add(`db ${s.on ?? 'pg'}`);
        if (s.kind === 'timed' && op.cancelAfterMs !== undefined) kinds.add('timed cancelled');
        if ('undo' in s && typeof s.undo === 'string') kinds.add(`undo ${s.undo}`);
        if ('undo' in s && Array.isArray(s.undo)) kinds.add('undo list');
      }
      const def = buildDefinition(op.name, op.steps, 'tbl');
      expect(() => compileFlow(def, env), JSON.stringify(def)).not.toThrow();
    }
    expect([...kinds].sort()).toEqual(
      [
        'api',
        'branch',
        'cont',
        'db',
        'db pg',
        'db mysql',
        'db redis',
        'effect',
        'expr',
        'fail',
        'flaky',
        'timed fast',
        'timed late',
        'timed cancelled',
        'undo broken',
        'undo list',
        'undo flaky',
        'undo soft',
      ].sort(),
    );
    expect(cancels).toBeGreaterThan(0);
    // Without the database, no database step; with some, only on those.
    for (let n = 0; n < 300; n++) {
      const op = generateOp('dflow-coverage', n);
      if (op.kind === 'dflow') expect(op.steps.some((s) => s.kind === 'db')).toBe(false);
      const some = generateOp('dflow-coverage', n, { databases: ['redis'] });
      if (some.kind === 'dflow')
        for (const s of some.steps) if (s.kind === 'db') expect(s.on).toBe('redis');
    }
  });
});
