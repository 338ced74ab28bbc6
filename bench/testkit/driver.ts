/**
 * The two ways of driving one scenario, for the test-kit comparison (see README.md here).
 *
 * A scenario is written once against {@link Driver}, so both suites run exactly the same
 * calls and the same assertions; only how a test waits and moves time differs:
 *
 * - `harness` (suite A) is how test/examples/** are written today: `harness()` from
 *   test/helpers.ts (an engine on a fresh SQLite file, durability `fsync`, a FakeClock),
 *   `until()` polling a condition, `clock.advance()` with its `settle()` between timers, and
 *   the orchestrator tests' `driveUntil` (advance a step, check, repeat).
 * - `kit` (suite B) is `testApp` from `keel/testing`: `t.idle()` instead of polling,
 *   `t.advance()`, `t.runUntilIdle({ skipTime: true })` instead of stepping the clock.
 */
import { afterEach, expect } from 'vitest';
import type { Definition, Duration, Engine, EngineOptions } from '../../src/index.js';
import type { FakeClock } from '../../src/testing/index.js';
import { testApp, type TestApp } from '../../src/testing/test-app.js';
import { harness, until, type Harness } from '../../test/helpers.js';

/** What a scenario drives: the engine under test, its clock, and ways to wait and move time. */
export interface Driver {
  /** The engine (after {@link restart}, the new one). */
  readonly engine: Engine;
  readonly clock: FakeClock;
  /** The log lines written so far, as `"level message"`. */
  logs(): string[];
  /** Waits, without moving the clock, until `cond` holds. */
  waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void>;
  /** Moves the fake clock forward by `d`, firing what falls due on the way. */
  advance(d: Duration): Promise<void>;
  /**
   * Moves time until `cond` holds. Harness: `step` at a time (today's `driveUntil`). Kit: the
   * same, with `t.advance(step)` (for scenarios where a long timer, such as an approval
   * deadline, must not be skipped to).
   */
  driveUntil(cond: () => boolean | Promise<boolean>, what: string, step?: Duration): Promise<void>;
  /**
   * Runs invocation `id` to its end, moving time as far as it needs, and returns its result.
   * Harness: advance `step` at a time until it has finished. Kit: `runUntilIdle({ skipTime })`.
   */
  finish(id: string, step?: Duration): Promise<unknown>;
  /** Stops the engine and starts a new one on the same database and clock time. */
  restart(): Promise<void>;
}

/** One test of the comparison: the services it starts and what it does. */
export interface Scenario {
  name: string;
  services: Definition[];
  /** Engine options beyond the services (both suites get the same). */
  options?: Omit<EngineOptions, 'store' | 'clock' | 'services'>;
  run(d: Driver): Promise<void>;
}

export type DriverKind = 'harness' | 'kit';

/**
 * A driver factory for one test file: call `start(scenario)` inside a test; whatever it
 * started is closed after the test.
 */
export function useDriver(kind: DriverKind): (s: Scenario) => Promise<Driver> {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });
  return async (s) => {
    const made = kind === 'harness' ? await harnessDriver(s) : await kitDriver(s);
    close = made.close;
    return made.driver;
  };
}

async function harnessDriver(s: Scenario): Promise<{ driver: Driver; close: () => Promise<void> }> {
  const h: Harness = await harness({ ...s.options, services: s.services });
  const driveUntil: Driver['driveUntil'] = async (cond, what, step = '1s') => {
    for (let i = 0; i < 500; i++) {
      if (await cond()) return;
      await h.clock.advance(step);
    }
    throw new Error(`the clock moved 500 × ${String(step)} and still not: ${what}`);
  };
  const driver: Driver = {
    get engine() {
      return h.engine;
    },
    clock: h.clock,
    logs: () => h.logs,
    waitFor: (cond, what) => until(cond, what),
    advance: (d) => h.clock.advance(d),
    driveUntil,
    async finish(id, step = '1s') {
      await driveUntil(
        async () => {
          const status = (await h.engine.getInvocation(id))?.status;
          return status === 'completed' || status === 'failed';
        },
        `${id} finished`,
        step,
      );
      return h.engine.attach(id);
    },
    async restart() {
      await h.restart();
    },
  };
  return { driver, close: () => h.close() };
}

async function kitDriver(s: Scenario): Promise<{ driver: Driver; close: () => Promise<void> }> {
  const options = { ...s.options, services: s.services };
  let t: TestApp = await testApp(options);
  const driver: Driver = {
    get engine() {
      return t.engine;
    },
    get clock() {
      return t.clock;
    },
    logs: () => t.logs.map((l) => `${l.level} ${l.message}`),
    async waitFor(cond, what) {
      await t.idle();
      expect(await cond(), what).toBe(true);
    },
    advance: (d) => t.advance(d),
    async driveUntil(cond, what, step = '1s') {
      for (let i = 0; i < 500; i++) {
        if (await cond()) return;
        await t.advance(step);
      }
      throw new Error(`the clock moved 500 × ${String(step)} and still not: ${what}`);
    },
    async finish(id) {
      await t.runUntilIdle({ skipTime: true });
      return t.attach(id);
    },
    async restart() {
      // The same file and options, the clock where it was; the old app is closed.
      t = await t.restartApp();
    },
  };
  return {
    driver,
    close: async () => {
      await t.close();
    },
  };
}
