/** What the orchestrator tests share: a fake-clock harness per test and ways to drive it. */
import { afterEach } from 'vitest';
import type { Definition, Duration } from '../../../src/index.js';
import type { RunStatus } from '../../../examples/orchestration-kit/status.js';
import { harness, until, type Harness } from '../../helpers.js';

/**
 * A fresh engine (fake clock, temporary SQLite file) for one test, closed after it. Call
 * inside a test.
 */
export function useHarness(services: Definition[]): () => Promise<Harness> {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  return async () => {
    h = await harness({ services, logger: () => undefined });
    return h;
  };
}

/**
 * Moves the fake clock forward `step` at a time until `cond` holds: downstream services sleep
 * durably to simulate work, and each wake-up may start the next timer.
 */
export async function driveUntil(
  h: Harness,
  cond: () => boolean | Promise<boolean>,
  what: string,
  step: Duration = '1s',
  rounds = 200,
): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await h.clock.advance(step);
  }
  throw new Error(`the clock moved ${rounds} × ${String(step)} and still not: ${what}`);
}

/** Waits (without moving the clock) until a workflow's status satisfies `cond`. */
export async function untilStatus(
  read: () => Promise<RunStatus>,
  cond: (s: RunStatus) => boolean,
  what: string,
): Promise<RunStatus> {
  let last: RunStatus | undefined;
  await until(async () => cond((last = await read())), what);
  return last!;
}

/** The step names of a history, with their events: `["charge customer:started", ...]`. */
export function events(status: RunStatus): string[] {
  return status.history.map((e) => `${e.step}:${e.event}`);
}
