import { describe, expect, it } from 'vitest';
import { compileFlow } from '../../src/flows/index.js';
import { analyzeLog } from './checker.js';
import {
  buildDefinition,
  checkFlowEffects,
  expectRun,
  FIXED_DFLOW,
  judgeResult,
  type DRun,
  type DStep,
} from './dflow.js';
import { generateOp } from './generator.js';
import { parseLog } from './program.js';
import { Ledger } from './workload.js';

/** An execution log from `pid kind args...` lines (timestamps do not matter to the checker). */
const log = (...lines: string[]): ReturnType<typeof parseLog> =>
  parseLog(lines.map((l, i) => `${1000 + i} ${l}\n`).join(''));

/**
 * Process 1 enters Counter k for add `t`, then stalls; process 2 adopts the invocation and
 * runs it; `zombie` is what process 1 logs around that (a fence, an ack, further work).
 */
function adoption(zombie: { before?: string[]; after?: string[] }): ReturnType<typeof parseLog> {
  return log(
    '1 enter k t',
    '1 start C/t',
    ...(zombie.before ?? []),
    '2 enter k t',
    '2 start C/t',
    '2 end C/t',
    '2 ack C/t',
    '2 exit k t',
    ...(zombie.after ?? []),
  );
}

describe('the torture checker on overlaps of one object key', () => {
  it('counts an adoption of a fenced zombie that committed nothing apart, not as a violation', () => {
    for (const zombie of [{ before: ['1 fenced'] }, { after: ['1 fenced'] }]) {
      const r = analyzeLog(adoption(zombie));
      expect(r.overlaps).toBe(0);
      expect(r.zombieOverlaps).toBe(1);
      expect(r.problems.filter((p) => p.invariant === 'per-key exclusivity')).toEqual([]);
    }
  });

  it('counts a hand-off after the holder fenced itself with no body in flight apart, not as a violation', () => {
    // Seen in a 30-minute run: the holder's step committed, then it fenced itself and dropped
    // its runner (so no exit line), and the adopter replayed the step from the journal.
    const r = analyzeLog(
      log(
        '1 enter k t',
        '1 start C/t',
        '1 end C/t',
        '1 fenced',
        '2 enter k t',
        '2 ack C/t',
        '2 exit k t',
      ),
    );
    expect(r.overlaps).toBe(0);
    expect(r.zombieOverlaps).toBe(1);
    // The same, but the holder logs its step's end after the fence: it was still running.
    const late = analyzeLog(
      log(
        '1 enter k t',
        '1 start C/t',
        '1 fenced',
        '2 enter k t',
        '1 end C/t',
        '2 ack C/t',
        '2 exit k t',
      ),
    );
    expect(late.overlaps).toBe(1);
    // Seen in a 30-minute run under heavy load: the holder observed its step's result (replayed
    // or committed), fenced itself, and only then did the adopter enter and replay that result.
    const inOrder = analyzeLog(
      log('1 enter k t', '1 ack C/t', '1 fenced', '2 enter k t', '2 ack C/t', '2 exit k t'),
    );
    expect(inOrder.overlaps).toBe(0);
    expect(inOrder.zombieOverlaps).toBe(1);
    // ... and its process, joined again under a new registration, adopts it back later.
    const back = analyzeLog(
      log(
        '1 enter k t',
        '1 ack C/t',
        '1 fenced',
        '2 enter k t',
        '2 ack C/t',
        '2 fenced',
        '1 enter k t',
        '1 ack C/t',
        '1 exit k t',
      ),
    );
    expect(back.overlaps).toBe(0);
    expect(back.zombieOverlaps).toBe(2);
    // Seen after a real database restart under load: the holder went silent before the adopter
    // entered and was killed, silent still, after it.
    const silent = analyzeLog(
      log(
        '1 enter k t',
        '1 start C/t',
        '1 end C/t',
        '1 ack C/t',
        '2 enter k t',
        '2 ack C/t',
        '9 kill 1',
        '2 exit k t',
      ),
    );
    expect(silent.overlaps).toBe(0);
    expect(silent.zombieOverlaps).toBe(1);
    // ... but not when it was still inside a step body when the adopter entered.
    const busy = analyzeLog(
      log('1 enter k t', '1 start C/t', '2 enter k t', '2 start C/t', '9 kill 1', '2 exit k t'),
    );
    expect(busy.overlaps).toBe(1);
  });

  it('keeps every overlap without that evidence a violation', () => {
    const cases = [
      // No fence or lease loss logged by the holder at all.
      adoption({}),
      // The holder's step result was journaled (it observed it) before the fence.
      adoption({ before: ['1 end C/t', '1 ack C/t', '1 fenced'] }),
      // The holder ran on (started a step) after the adopter entered, before any fence.
      adoption({ after: ['1 start C/other', '1 fenced'] }),
      // A different invocation entered while the holder held the key.
      log('1 enter k t', '1 fenced', '2 enter k u', '2 start C/u', '2 exit k u'),
      // The adopter never ran the step itself: the holder's result was in the journal.
      log('1 enter k t', '1 start C/t', '1 fenced', '2 enter k t', '2 ack C/t', '2 exit k t'),
    ];
    for (const lines of cases) {
      const r = analyzeLog(lines);
      expect(r.zombieOverlaps).toBe(0);
      expect(r.overlaps).toBe(1);
    }
  });
});

describe('the torture checker on steps that ran again', () => {
  const reruns = (r: ReturnType<typeof analyzeLog>) =>
    r.problems.filter((p) => p.invariant === 'a step re-runs only if a crash cut it');

  it('accepts a re-run by another process while the first execution was still in flight, its process killed later', () => {
    // Seen in a 30-minute run with real PostgreSQL restarts: pid 1 stalled inside the step body
    // past its lease, pid 2 adopted the invocation and ran the step, and pid 1 was killed after.
    const r = analyzeLog(log('1 start F/f1/0', '2 start F/f1/0', '2 end F/f1/0', '9 kill 1'));
    expect(reruns(r)).toEqual([]);
  });

  it('still flags a re-run by another process after the first execution ended, with no crash or fence', () => {
    const r = analyzeLog(log('1 start F/f1/0', '1 end F/f1/0', '2 start F/f1/0', '9 kill 1'));
    expect(reruns(r)).toHaveLength(1);
  });

  it('accepts a re-run in the same process after it reported a failed journal write, not before', () => {
    // pg_terminate_backend: the process notices at its next query, after the fault's window.
    const run = (...between: string[]) =>
      analyzeLog(
        log(
          '0 outage begin',
          '0 outage end',
          '1 start W/t/0',
          '1 end W/t/0',
          ...between,
          '1 start W/t/0',
        ),
      );
    expect(run('1 writefail').problems).toEqual([]);
    expect(run().unexplainedReruns).toBe(1);
    // Another process's failed write excuses nothing here.
    expect(run('2 writefail').unexplainedReruns).toBe(1);
  });

  it('still flags a re-run in flight when the first process was never killed nor fenced', () => {
    const r = analyzeLog(log('1 start F/f1/0', '2 start F/f1/0', '2 end F/f1/0'));
    expect(reruns(r)).toHaveLength(1);
  });

  it('flags a re-run after a clean stop (SIGTERM) of the process that ran it: it drained first', () => {
    const r = analyzeLog(
      log('1 start W/t/0', '1 end W/t/0', '1 leaving', '9 term 1', '2 start W/t/0', '2 end W/t/0'),
    );
    expect(reruns(r)).toHaveLength(1);
  });

  it('accepts a re-run after a clean stop whose body outlived the drain (outlived its grace)', () => {
    const stop = ['1 undrained', '9 term 1', '2 start W/t/0', '2 end W/t/0', '1 end W/t/0'];
    expect(analyzeLog(log('1 start W/t/0', ...stop)).problems).toEqual([]);
    // Without the process's word that it kept its lease, the same log is a violation.
    expect(reruns(analyzeLog(log('1 start W/t/0', ...stop.slice(1))))).toHaveLength(1);
  });
});

describe('the torture checker on clean stops', () => {
  it('frees the object keys of a process that left: the adopter enters the key, no overlap', () => {
    // The holder's step was journaled before it left; the adopter replays it and exits.
    const lines = ['1 enter k t', '1 start C/t', '1 end C/t', '1 leaving'];
    const after = ['2 enter k t', '2 ack C/t', '2 exit k t', '9 term 1'];
    const r = analyzeLog(log(...lines, ...after));
    expect(r.overlaps).toBe(0);
    expect(r.problems).toEqual([]);
    // Had it not said it was leaving, the adopter's entry overlaps a live holder.
    expect(analyzeLog(log(...lines.slice(0, 3), ...after)).problems).not.toEqual([]);
  });
});

describe('the torture checker on the flow-control queue (2 at once, 1 per key)', () => {
  const queueProblems = (r: ReturnType<typeof analyzeLog>) =>
    r.problems.filter((p) => p.invariant === 'queue limits');

  it('reports a third invocation inside the queue at once', () => {
    const r = analyzeLog(
      log('1 qenter q0 a', '1 qenter q1 b', '1 qenter q2 c', '1 qexit q0 a', '1 qexit q1 b'),
    );
    expect(r.queueViolations).toBe(1);
    expect(queueProblems(r)).toHaveLength(1);
    expect(queueProblems(r)[0]!.detail).toMatch(/^c \(key q2, pid 1\).*3 inside \(limit 2\)/);
    expect(r.queuePeak).toEqual({ total: 3, perKey: 1 });
  });

  it('reports two invocations of one key inside at once, across processes', () => {
    const r = analyzeLog(log('1 qenter q0 a', '2 qenter q0 b', '2 qexit q0 b', '1 qexit q0 a'));
    expect(r.queueViolations).toBe(1);
    expect(queueProblems(r)[0]!.detail).toMatch(/2 of key q0 inside \(limit 1\); inside: a /);
  });

  it('accepts invocations that enter as others exit, and attempts of one invocation again', () => {
    const r = analyzeLog(
      log(
        '1 qenter q0 a',
        '1 qenter q1 b',
        '1 qexit q0 a',
        '1 qenter q0 c',
        // b suspended in its sleep (its attempt logs no exit) and resumes: the same slot.
        '1 qenter q1 b',
        '1 qexit q1 b',
        '1 qexit q0 c',
      ),
    );
    expect(queueProblems(r)).toEqual([]);
    expect(r.queueAdmissions).toBe(3);
    expect(r.queuePeak).toEqual({ total: 2, perKey: 1 });
    expect(r.queueReentries).toEqual({ afterCut: 0, other: 1 });
  });

  it('accepts holders killed mid-attempt whose invocations go on in another process', () => {
    // Process 1 dies with a and b inside (neither logs an exit); the survivors resume them. A new
    // invocation enters only once one of them has finished.
    const r = analyzeLog(
      log(
        '1 qenter q0 a',
        '1 start Q/a/0',
        '1 qenter q1 b',
        '9 kill 1',
        '2 qenter q0 a',
        '2 start Q/a/0',
        '2 end Q/a/0',
        '2 ack Q/a/0',
        '3 qenter q1 b',
        '2 qexit q0 a',
        '2 qenter q0 c',
        '3 qexit q1 b',
        '2 qexit q0 c',
      ),
    );
    expect(queueProblems(r)).toEqual([]);
    expect(r.queuePeak).toEqual({ total: 2, perKey: 1 });
    expect(r.queueReentries).toEqual({ afterCut: 2, other: 0 });
  });

  it('does not free a killed holder’s slot: its invocation is unfinished until it exits', () => {
    // The store counts an admitted invocation until it finishes, whatever became of the process
    // that ran it: a new one entering meanwhile is over the limit.
    const r = analyzeLog(log('1 qenter q0 a', '1 qenter q1 b', '9 kill 1', '2 qenter q2 c'));
    expect(r.queueViolations).toBe(1);
    expect(queueProblems(r)[0]!.detail).toContain(
      'a (key q0, entered at log seq 0; attempt of pid 1 at log seq 0, its process killed at log seq 2; never exited)',
    );
    const sameKey = analyzeLog(log('1 qenter q0 a', '9 kill 1', '2 qenter q0 d'));
    expect(sameKey.queueViolations).toBe(1);
  });

  it('keeps an invocation inside from its exit to its next entry (killed before its finish committed)', () => {
    // Seed f9caad8a: f logged its exit, its process was killed before the commit that would
    // have finished it, and a new invocation n of its key entered before f ran again elsewhere.
    const r = analyzeLog(
      log(
        '1 qenter q0 f',
        '1 qexit q0 f',
        '9 kill 1',
        '2 qenter q0 n',
        '2 qenter q0 f',
        '2 qexit q0 f',
        '2 qexit q0 n',
      ),
    );
    expect(r.queueViolations).toBe(1);
    expect(queueProblems(r)[0]!.detail).toMatch(
      /^n \(key q0, pid 2\) entered at log seq 3: 2 of key q0/,
    );
    expect(queueProblems(r)[0]!.detail).toContain('f (key q0, entered at log seq 0;');
    // Without a later entry of f, its exit freed the slot.
    const freed = analyzeLog(
      log('1 qenter q0 f', '1 qexit q0 f', '9 kill 1', '2 qenter q0 n', '2 qexit q0 n'),
    );
    expect(freed.queueViolations).toBe(0);
    // A zombie's late exit (after the attempt that finished it) does not stretch its span.
    const zombie = analyzeLog(
      log(
        '1 qenter q0 f',
        '1 fenced',
        '2 qenter q0 f',
        '2 qexit q0 f',
        '3 qenter q0 n',
        '1 qexit q0 f',
        '3 qexit q0 n',
      ),
    );
    expect(zombie.queueViolations).toBe(0);
    expect(zombie.queueReentries).toEqual({ afterCut: 1, other: 0 });
  });
});

describe('the torture checker on declarative flows', () => {
  /** effect s0 (undone on failure), a branch on n > 4, expression s2, then `tail`. */
  const steps = (tail: DStep[]): DStep[] => [
    { kind: 'effect', id: 's0', ms: 0, undo: true },
    {
      kind: 'branch',
      id: 's1',
      threshold: 4,
      then: [{ kind: 'effect', id: 's1t0', ms: 0, undo: false }],
      else: [{ kind: 'effect', id: 's1e0', ms: 0, undo: false }],
    },
    { kind: 'expr', id: 's2', add: 3 },
    ...tail,
  ];
  const input = { tag: 'd7', n: 6 };
  const run = (tail: DStep[], acked = true): DRun => ({
    op: 'flow run f d7',
    acked,
    expect: expectRun('f', steps(tail), input, 'f:d7'),
    request: { path: '/flows/f/run?id=d7', headers: {}, body: input },
  });

  it('expects what the definition computes: the branch taken, then compensations in reverse', () => {
    const ok = run([]).expect;
    expect(ok.result).toMatchObject({
      status: 'completed',
      success: true,
      data: { v_s2: 15 },
      outputs: { s0: 'D/d7/s0', s1t0: 'D/d7/s1t0', s1: 'D/d7/s1t0', s2: 15, seen: null },
      compensated: [],
    });
    expect(ok.never).toEqual(['D/d7/s1e0', 'D/d7/s0u']);
    const failed = run([
      { kind: 'effect', id: 's3', ms: 0, undo: true },
      { kind: 'fail', id: 'boom' },
      { kind: 'effect', id: 's4', ms: 0, undo: true },
    ]).expect;
    expect(failed.result).toMatchObject({
      status: 'compensated',
      success: false,
      failedStep: 'boom',
      compensated: ['s3', 's0'],
      errors: [{ step: 'boom', code: 'step_failed' }],
    });
    expect(failed.must).toContain('D/d7/s0u');
    expect(failed.never).toEqual(['D/d7/s1e0', 'D/d7/s4', 'D/d7/s4u']);
  });

  it('reports an answer that is not what the definition computes', () => {
    const { result } = run([]).expect;
    const answer = { ...result, invocationId: 'inv_1', duration: 3, startedAt: 'x', endedAt: 'y' };
    expect(judgeResult(result, answer)).toBe('');
    // The other branch taken, a compensation where none is owed, the id missing.
    const wrong = { ...answer, outputs: { ...result.outputs, s1: 'D/d7/s1e0' } };
    expect(judgeResult(result, wrong)).toMatch(/^outputs /);
    expect(judgeResult(result, { ...answer, status: 'compensated' })).toMatch(/^status /);
    expect(judgeResult(result, { ...answer, invocationId: undefined })).toMatch(/invocationId/);
    expect(judgeResult(result, { ...answer, failedStep: 's0' })).toMatch(/failedStep/);
  });

  it('reports an answered run whose steps never ran, and a step its definition does not take', () => {
    const good = log(
      '1 start D/d7/s0',
      '1 end D/d7/s0',
      '1 ack D/d7/s0',
      '1 start D/d7/s1t0',
      '1 end D/d7/s1t0',
    );
    expect(checkFlowEffects(good, [run([])])).toEqual([]);
    const missing = checkFlowEffects(log('1 start D/d7/s0', '1 end D/d7/s0'), [run([])]);
    expect(missing.map((p) => p.invariant)).toEqual(['an acknowledged flow run did its steps']);
    expect(missing[0]!.detail).toContain('D/d7/s1t0');
    // A run not answered need not have run, but if it ran, it ran as defined.
    expect(checkFlowEffects(log(), [run([], false)])).toEqual([]);
    for (const stray of ['D/d7/s1e0', 'D/d7/s0u']) {
      const p = checkFlowEffects(log(`1 start ${stray}`), [run([], false)]);
      expect(p.map((x) => x.invariant)).toEqual(['a flow runs the steps its definition takes']);
    }
  });

  it('reports an api step whose requests carried another key than the run’s, or two keys', () => {
    const apiRun = (first?: unknown): DRun => ({
      ...run([{ kind: 'api', id: 's3' }]),
      ...(first === undefined ? {} : { first }),
    });
    expect(apiRun().expect.result.outputs.s3).toEqual({ id: 'D/d7/s3' });
    const base = ['1 start D/d7/s0', '1 start D/d7/s1t0'];
    const twice = log(...base, '0 api D/d7/s3 inv_1:s3', '0 api D/d7/s3 inv_1:s3');
    expect(checkFlowEffects(twice, [apiRun({ invocationId: 'inv_1' })])).toEqual([]);
    const cases: Array<[ReturnType<typeof log>, DRun]> = [
      [log(...base, '0 api D/d7/s3 inv_1:s3'), apiRun({ invocationId: 'inv_2' })],
      [log(...base, '0 api D/d7/s3 inv_1:s3', '0 api D/d7/s3 inv_9:s3'), apiRun()],
      [log(...base, '0 api D/d7/s3 -'), apiRun({ invocationId: 'inv_1' })],
    ];
    for (const [lines, r] of cases)
      expect(checkFlowEffects(lines, [r]).map((p) => p.invariant)).toEqual([
        'an api step sends one idempotency key',
      ]);
    // Never reached the downstream in an answered run: not done.
    expect(
      checkFlowEffects(log(...base), [apiRun({ invocationId: 'inv_1' })]).map((p) => p.invariant),
    ).toEqual(['an acknowledged flow run did its steps']);
  });

  it('reports a flow step that ran again after the next step observed its result', () => {
    // `ack` of s0 is logged by s1's body: s0's result was journaled and handed back.
    const lines = (...between: string[]) =>
      log(
        '1 start D/d7/s0',
        '1 end D/d7/s0',
        ...between,
        '1 start D/d7/s1t0',
        '0 kill 1',
        '2 start D/d7/s0',
      );
    expect(analyzeLog(lines()).problems).toEqual([]);
    const r = analyzeLog(lines('1 ack D/d7/s0'));
    expect(r.completedReruns).toBe(1);
    expect(r.problems.map((p) => p.invariant)).toEqual(['no completed step runs twice']);
  });

  it('reports one flow run key answered by two invocations', () => {
    const ledger = new Ledger();
    const e = { op: 'flow run f d7', must: 'complete' as const, api: 'admin' as const };
    ledger.ack(e.op, 'flow run f:d7', 'inv_1', e);
    ledger.ack(e.op, 'flow run f:d7', 'inv_1', e);
    expect(ledger.problems).toEqual([]);
    ledger.ack(e.op, 'flow run f:d7', 'inv_2', e);
    expect(ledger.problems.map((p) => p.invariant)).toEqual(['one invocation per dedupe key']);
  });

  it('generates only definitions the flows validation accepts', () => {
    const env = {
      transforms: new Set(['effect', 'flaky', 'fail', 'failx', 'broken', 'seen']),
      integrations: new Map([['Downstream', new Set(['effect'])]]),
    };
    const defs = [buildDefinition(FIXED_DFLOW.name, FIXED_DFLOW.steps)];
    for (let n = 0; defs.length < 60; n++) {
      const op = generateOp('dflow-validation', n);
      if (op.kind === 'dflow' && op.register) defs.push(buildDefinition(op.name, op.steps));
    }
    for (const def of defs) expect(() => compileFlow(def, env), JSON.stringify(def)).not.toThrow();
  });
});
