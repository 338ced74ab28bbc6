import { join } from 'node:path';
import {
  Engine,
  service,
  type Context,
  type Definition,
  type InvocationInfo,
} from '../../src/index.js';
import { schedules, type ScheduleDeclaration, type Schedules } from '../../src/schedules/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { tempDir } from '../helpers.js';

/** The target of the tests' schedules: records nothing, so the invocations are the record. */
export const Tick = service({
  name: 'Tick',
  handlers: {
    hit: async (_ctx: Context, input?: unknown) => input ?? null,
  },
});

/** Every invocation of a service, oldest first. */
export async function invocationsOf(engine: Engine, name = 'Tick'): Promise<InvocationInfo[]> {
  const out: InvocationInfo[] = [];
  let cursor: string | undefined;
  do {
    const page = await engine.listInvocations({
      service: name,
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor }),
    });
    out.push(...page.invocations);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out.reverse();
}

/** An engine with schedules on a SQLite file and a fake clock, restartable on the same file. */
export interface ScheduleHarness {
  engine: Engine;
  ext: Schedules;
  clock: FakeClock;
  logs: string[];
  /** Stops the engine (the app is down); `start` brings it back on the same file and clock. */
  stop(): Promise<void>;
  /** Starts again, with other declarations if given (a deploy of changed code). */
  start(declarations?: readonly ScheduleDeclaration[]): Promise<void>;
  close(): Promise<void>;
}

export async function scheduleHarness(
  declarations: readonly ScheduleDeclaration[],
  start: number,
  services: Definition[] = [Tick],
): Promise<ScheduleHarness> {
  const { dir, cleanup } = tempDir('keel-schedules-');
  const clock = new FakeClock(start);
  const logs: string[] = [];
  const make = (declared = declarations) => {
    const ext = schedules(declared);
    const engine = new Engine({
      services,
      store: openSqliteStore({ path: join(dir, 'keel.db'), durability: 'os' }),
      clock,
      suspendAfter: '1s',
      // The tests count every invocation of a simulated week: none may be deleted meanwhile.
      retention: '30d',
      logger: (level, message) => logs.push(`${level} ${message}`),
      extensions: [ext],
    });
    return { ext, engine };
  };
  let running = true;
  const h: ScheduleHarness = {
    ...make(),
    clock,
    logs,
    async stop() {
      await h.engine.stop();
      running = false;
    },
    async start(declared) {
      Object.assign(h, make(declared));
      await h.engine.start();
      running = true;
    },
    async close() {
      if (running) await h.engine.stop().catch(() => undefined);
      cleanup();
    },
  };
  try {
    await h.engine.start();
  } catch (err) {
    await h.engine.stop().catch(() => undefined);
    cleanup();
    throw err;
  }
  return h;
}

export const iso = (t: number): string => new Date(t).toISOString();
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
