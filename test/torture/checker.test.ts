import { describe, expect, it } from 'vitest';
import { analyzeLog } from './checker.js';
import { parseLog } from './program.js';

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

  it('still flags a re-run in flight when the first process was never killed nor fenced', () => {
    const r = analyzeLog(log('1 start F/f1/0', '2 start F/f1/0', '2 end F/f1/0'));
    expect(reruns(r)).toHaveLength(1);
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
