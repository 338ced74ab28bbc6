import { describe, expect, it } from 'vitest';
import {
  acquireBreaker,
  breakerFailureCount,
  breakerStatus,
  initialBreakerState,
  parseBreakerState,
  recordBreakerFailure,
  recordBreakerSuccess,
  resetBreaker,
  type BreakerOptions,
  type BreakerState,
  type BreakerTicket,
} from './breaker.js';

const OPTS: BreakerOptions = {
  failures: 5,
  windowMs: 60_000,
  resetMs: 30_000,
  probeTimeoutMs: 10_000,
};

/** Admits a call and records a failure for it at `now`. */
function fail(
  state: BreakerState,
  now: number,
  opts = OPTS,
): ReturnType<typeof recordBreakerFailure> {
  const d = acquireBreaker(state, now, opts);
  if (!d.allowed) throw new Error(`not admitted at ${now}`);
  return recordBreakerFailure(d.state, d.ticket, now, opts);
}

function failAt(times: number[], opts = OPTS, from = initialBreakerState()): BreakerState {
  return times.reduce((s, t) => fail(s, t, opts).state, from);
}

function admit(
  state: BreakerState,
  now: number,
  opts = OPTS,
): { state: BreakerState; ticket: BreakerTicket } {
  const d = acquireBreaker(state, now, opts);
  if (!d.allowed) throw new Error(`not admitted at ${now}`);
  return { state: d.state, ticket: d.ticket };
}

describe('circuit breaker: closed', () => {
  it('admits every call without changing the state', () => {
    const s = initialBreakerState();
    const d = acquireBreaker(s, 1000, OPTS);
    expect(d).toEqual({
      allowed: true,
      ticket: { generation: 0, probe: false },
      state: s,
      events: [],
    });
    expect(d.state).toBe(s);
  });

  it('stays closed with N-1 failures in the window and opens at the Nth', () => {
    const four = failAt([0, 1000, 2000, 3000]);
    expect(four).toEqual({ status: 'closed', generation: 0, failures: [0, 1000, 2000, 3000] });
    const fifth = fail(four, 4000);
    expect(fifth.state).toEqual({ status: 'open', generation: 1, openedAt: 4000 });
    expect(fifth.events).toEqual([
      { type: 'opened', at: 4000, reason: 'failures', failures: 5, probeAt: 34_000 },
    ]);
  });

  it('counts a failure while now - at < window: exactly one window later it no longer counts', () => {
    const four = failAt([0, 10_000, 20_000, 30_000]);
    // The first failure is exactly 60s old: out of the window.
    expect(fail(four, 60_000).state.status).toBe('closed');
    expect(breakerFailureCount(fail(four, 60_000).state, 60_000, OPTS)).toBe(4);
    // One millisecond earlier it still counts, and the circuit opens.
    expect(fail(four, 59_999).state.status).toBe('open');
  });

  it('keeps at most N timestamps, the newest', () => {
    const opts = { ...OPTS, failures: 3 };
    const s = failAt([0, 100_000, 200_000, 300_000, 400_000], opts);
    expect(s).toEqual({ status: 'closed', generation: 0, failures: [400_000] });
    const spaced = failAt([0, 30_000], opts);
    expect(spaced).toEqual({ status: 'closed', generation: 0, failures: [0, 30_000] });
  });

  it('successes do not erase failures: "5 failures in 1m" counts failures, not a streak', () => {
    let s = failAt([0, 1000, 2000, 3000]);
    const { state, ticket } = admit(s, 3500);
    const after = recordBreakerSuccess(state, ticket, 3500, OPTS);
    expect(after.state).toBe(state);
    s = fail(after.state, 4000).state;
    expect(s.status).toBe('open');
  });

  it('with N = 1 the first failure opens it', () => {
    expect(failAt([5], { ...OPTS, failures: 1 })).toEqual({
      status: 'open',
      generation: 1,
      openedAt: 5,
    });
  });
});

describe('circuit breaker: open and half-open', () => {
  const opened = failAt([0, 1, 2, 3, 4]); // open at t=4, probe from t=30_004

  it('refuses calls until the reset time, saying how long to wait', () => {
    expect(acquireBreaker(opened, 4, OPTS)).toEqual({
      allowed: false,
      retryInMs: 30_000,
      state: opened,
      events: [],
    });
    expect(acquireBreaker(opened, 30_003, OPTS)).toMatchObject({ allowed: false, retryInMs: 1 });
  });

  it('at the reset time admits one probe and turns half-open', () => {
    const d = acquireBreaker(opened, 30_004, OPTS);
    expect(d).toEqual({
      allowed: true,
      ticket: { generation: 2, probe: true },
      state: { status: 'half-open', generation: 2, probeAt: 30_004 },
      events: [{ type: 'half-opened', at: 30_004 }],
    });
  });

  it('refuses everything but the probe while it runs', () => {
    const { state } = admit(opened, 30_004);
    expect(acquireBreaker(state, 30_005, OPTS)).toMatchObject({
      allowed: false,
      retryInMs: 9999,
      events: [],
    });
    expect(acquireBreaker(state, 40_003, OPTS)).toMatchObject({ allowed: false, retryInMs: 1 });
  });

  it("the probe's success closes the circuit with a clean slate", () => {
    const { state, ticket } = admit(opened, 30_004);
    const closed = recordBreakerSuccess(state, ticket, 30_500, OPTS);
    expect(closed).toEqual({
      state: { status: 'closed', generation: 3, failures: [] },
      events: [{ type: 'closed', at: 30_500, reason: 'probe-succeeded' }],
    });
    expect(acquireBreaker(closed.state, 30_501, OPTS)).toMatchObject({
      allowed: true,
      ticket: { generation: 3, probe: false },
    });
  });

  it("the probe's failure re-opens it for another reset period", () => {
    const { state, ticket } = admit(opened, 30_004);
    const reopened = recordBreakerFailure(state, ticket, 30_600, OPTS);
    expect(reopened).toEqual({
      state: { status: 'open', generation: 3, openedAt: 30_600 },
      events: [
        { type: 'opened', at: 30_600, reason: 'probe-failed', failures: 1, probeAt: 60_600 },
      ],
    });
    expect(acquireBreaker(reopened.state, 60_599, OPTS).allowed).toBe(false);
    expect(acquireBreaker(reopened.state, 60_600, OPTS).allowed).toBe(true);
  });

  it('a probe that never reports back is replaced after probeTimeout, and its late answer ignored', () => {
    const first = admit(opened, 30_004);
    const second = acquireBreaker(first.state, 40_004, OPTS);
    expect(second).toEqual({
      allowed: true,
      ticket: { generation: 3, probe: true },
      state: { status: 'half-open', generation: 3, probeAt: 40_004 },
      events: [],
    });
    if (!second.allowed) throw new Error('unreachable');
    // The lost probe finally fails: ignored.
    const late = recordBreakerFailure(second.state, first.ticket, 40_100, OPTS);
    expect(late.state).toBe(second.state);
    expect(late.events).toEqual([]);
    // The current probe decides.
    expect(recordBreakerSuccess(second.state, second.ticket, 40_200, OPTS).state.status).toBe(
      'closed',
    );
  });

  it('probeTimeout defaults to the reset time', () => {
    const opts = { failures: 1, windowMs: 1000, resetMs: 500 };
    const open = failAt([0], opts);
    const { state } = admit(open, 500, opts);
    expect(acquireBreaker(state, 999, opts).allowed).toBe(false);
    expect(acquireBreaker(state, 1000, opts).allowed).toBe(true);
  });
});

describe('circuit breaker: stale results and resets', () => {
  it('results of calls admitted before the circuit opened are ignored', () => {
    let s = failAt([0, 1, 2, 3]);
    const slow = admit(s, 3); // admitted while closed, generation 0
    s = fail(s, 4).state; // opens: generation 1
    expect(recordBreakerFailure(s, slow.ticket, 5, OPTS).state).toBe(s);
    expect(recordBreakerSuccess(s, slow.ticket, 5, OPTS).state).toBe(s);
  });

  it('a non-probe ticket cannot close a half-open circuit', () => {
    const half = admit(failAt([0, 1, 2, 3, 4]), 30_004).state;
    const forged: BreakerTicket = { generation: half.generation, probe: false };
    expect(recordBreakerSuccess(half, forged, 30_005, OPTS).state).toBe(half);
    expect(recordBreakerFailure(half, forged, 30_005, OPTS).state).toBe(half);
  });

  it('failures after a re-close count only from the re-close on', () => {
    const open = failAt([0, 1, 2, 3, 4]);
    const probe = admit(open, 30_004);
    const closed = recordBreakerSuccess(probe.state, probe.ticket, 30_005, OPTS).state;
    expect(breakerFailureCount(closed, 30_006, OPTS)).toBe(0);
    expect(failAt([30_010, 30_011, 30_012, 30_013], OPTS, closed).status).toBe('closed');
  });

  it('reset closes an open circuit (an event) and clears a closed one (no event)', () => {
    const open = failAt([0, 1, 2, 3, 4]);
    expect(resetBreaker(open, 10)).toEqual({
      state: { status: 'closed', generation: 2, failures: [] },
      events: [{ type: 'closed', at: 10, reason: 'reset' }],
    });
    const some = failAt([0, 1]);
    expect(resetBreaker(some, 10)).toEqual({
      state: { status: 'closed', generation: 1, failures: [] },
      events: [],
    });
    const half = admit(open, 30_004);
    const reset = resetBreaker(half.state, 30_005);
    expect(reset.events).toEqual([{ type: 'closed', at: 30_005, reason: 'reset' }]);
    // The probe from before the reset no longer counts.
    expect(recordBreakerFailure(reset.state, half.ticket, 30_006, OPTS).state).toBe(reset.state);
  });
});

describe('circuit breaker: reporting and storage', () => {
  it('status: open reports half-open once a probe would be admitted', () => {
    const open = failAt([0, 1, 2, 3, 4]);
    expect(breakerStatus(initialBreakerState(), 0, OPTS)).toBe('closed');
    expect(breakerStatus(open, 30_003, OPTS)).toBe('open');
    expect(breakerStatus(open, 30_004, OPTS)).toBe('half-open');
    expect(breakerStatus(admit(open, 30_004).state, 30_005, OPTS)).toBe('half-open');
  });

  it('the state survives JSON, so two processes can share it through a store', () => {
    // Two "processes" reading and writing one stored row.
    let row = JSON.stringify(initialBreakerState());
    const step = (now: number, ok: boolean): boolean => {
      const state = parseBreakerState(JSON.parse(row));
      const d = acquireBreaker(state, now, OPTS);
      if (!d.allowed) return false;
      const next = ok
        ? recordBreakerSuccess(d.state, d.ticket, now, OPTS)
        : recordBreakerFailure(d.state, d.ticket, now, OPTS);
      row = JSON.stringify(next.state);
      return true;
    };
    // Process A and B fail alternately: the fifth failure opens the shared circuit.
    for (let i = 0; i < 5; i++) expect(step(i * 1000, false)).toBe(true);
    expect(step(5000, true)).toBe(false); // either process: fails fast
    expect(step(34_000, true)).toBe(true); // the probe, after 30s
    expect(JSON.parse(row)).toMatchObject({ status: 'closed' });
  });

  it.each([
    [null, /not an object/],
    [{ status: 'closed', generation: 0 }, /failures must be an array/],
    [{ status: 'open', generation: 1 }, /openedAt/],
    [{ status: 'half-open', generation: 1, probeAt: 'x' }, /probeAt/],
    [{ status: 'ajar', generation: 1 }, /status must be/],
    [{ status: 'closed', generation: 1.5, failures: [] }, /generation/],
  ])('parseBreakerState refuses %j', (value, message) => {
    expect(() => parseBreakerState(value)).toThrow(message);
  });
});
