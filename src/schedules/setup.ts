import { randomUUID } from 'node:crypto';
import { parseDuration, type Duration } from '../core/duration.js';
import { errorMessage, KeelError, UsageError } from '../core/errors.js';
import type { EngineExtension, ExtensionHost } from '../engine/extension.js';
import type { SendResult } from '../engine/info.js';
import type { Mount } from '../http/mount.js';
import { ScheduleConflictError, ScheduleNotFoundError } from './errors.js';
import { adminMount } from './http.js';
import {
  deleteSchedule,
  listSchedules,
  putSchedule,
  readSchedule,
  type ScheduleRow,
  type StoredSchedule,
} from './rows.js';
import { baseOf, Scheduler } from './scheduler.js';
import { parseSchedule, type ScheduleDeclaration, type ScheduleSpec } from './spec.js';
import { checkTarget, tickRequest } from './targets.js';
import { jitterOf, ticksOf } from './ticks.js';

/** Options of {@link schedules}. */
export interface SchedulesOptions {
  /**
   * On PostgreSQL: how often each process looks for schedules another process created, changed
   * or deleted (one small read; the list is read again only after a change). Default `5s`.
   */
  refresh?: Duration;
}

/** A schedule as the admin API and {@link Schedules.list} show it. Times are ISO-8601. */
export interface ScheduleView {
  name: string;
  cron: string;
  /** Absent: UTC. */
  timezone?: string;
  target: ScheduleSpec['target'];
  input?: unknown;
  missed: ScheduleSpec['missed'];
  /** The largest jitter, in milliseconds (0: none). */
  jitterMs: number;
  paused: boolean;
  /** `code`: declared in the app; `api`: created through the admin API. */
  source: 'code' | 'api';
  createdAt: string;
  /** The latest tick handled: fired, or passed over by the missed-tick policy. */
  lastTick?: string;
  /** The latest tick fired. */
  lastFired?: string;
  /** The next tick's time (absent while paused). */
  nextTick?: string;
  /** When the next tick fires: its time plus this schedule's jitter. */
  nextFireAt?: string;
}

/** What a manual trigger started. */
export interface TriggerResult extends SendResult {
  idempotencyKey: string;
}

/** Cron schedules on one engine: an {@link EngineExtension} named `schedules`. */
export interface Schedules extends EngineExtension {
  readonly name: 'schedules';
  readonly mounts: { readonly admin: Mount };
  /** Every schedule, in name order, with its next fire time. */
  list(): Promise<ScheduleView[]>;
  /** One schedule; 404 `schedule_not_found`. */
  get(name: string): Promise<ScheduleView>;
  /**
   * Creates a schedule (as `POST /schedules` does; the same fields as {@link schedule}, the
   * target by name). 400 when anything is wrong (nothing is stored), 409 `schedule_exists`.
   */
  create(raw: unknown): Promise<ScheduleView>;
  /** Stops firing ticks until {@link resume}; answers the schedule as it is when already paused. */
  pause(name: string): Promise<ScheduleView>;
  /** Fires ticks again, from the next one: the ticks that fell while it was paused never fire. */
  resume(name: string): Promise<ScheduleView>;
  /** Starts the target now, once, with the idempotency key `schedule:<name>:manual:<uuid>`. */
  trigger(name: string): Promise<TriggerResult>;
  /** Deletes an API-created schedule; 409 `schedule_in_code` for one declared in code. */
  delete(name: string): Promise<void>;
}

/**
 * Cron schedules: each tick of a schedule starts exactly one invocation of its target, across
 * restarts and across processes sharing a PostgreSQL store. `declarations` (made with
 * {@link schedule}) are stored when the engine starts; more can be created, paused, resumed,
 * triggered and deleted through the admin API at `/schedules` (see docs/schedules.md).
 *
 * @example
 * ```ts
 * const engine = new Engine({
 *   services: [Reports],
 *   store,
 *   extensions: [
 *     schedules([schedule({ name: 'hourly', cron: '0 * * * *', target: { service: Reports, handler: 'build' } })]),
 *   ],
 * });
 * await engine.start();
 * ```
 */
export function schedules(
  declarations: readonly ScheduleDeclaration[] = [],
  options: SchedulesOptions = {},
): Schedules {
  const refreshMs = parseDuration(options.refresh ?? '5s');
  if (refreshMs < 100) throw new UsageError('schedules: refresh must be at least 100ms');
  const seen = new Set<string>();
  for (const d of declarations) {
    if (seen.has(d.name))
      throw new UsageError(`schedules: two schedules are named "${d.name}": names must be unique`);
    seen.add(d.name);
  }
  let host: ExtensionHost | undefined;
  let scheduler: Scheduler | undefined;
  const ready = (): { host: ExtensionHost; scheduler: Scheduler } => {
    if (!host || !scheduler)
      throw new KeelError('schedules: the engine has not started yet', {
        code: 'engine_not_started',
        status: 503,
      });
    return { host, scheduler };
  };

  const view = (row: ScheduleRow): ScheduleView => {
    const { host: h, scheduler: s } = ready();
    const v = row.value;
    const iso = (t: number) => new Date(t).toISOString();
    const delay = jitterOf(row.name, v.spec.jitterMs);
    // The index's time when this process has it; else the first tick not yet due.
    const fireAt = v.paused
      ? undefined
      : (s.fireAt(row.name) ??
        withDelay(ticksOf(v.spec).next(Math.max(baseOf(v), h.clock.now() - delay)), delay));
    return {
      name: row.name,
      cron: v.spec.cron,
      ...(v.spec.timezone === undefined ? {} : { timezone: v.spec.timezone }),
      target: v.spec.target,
      ...(v.spec.input === undefined ? {} : { input: v.spec.input }),
      missed: v.spec.missed,
      jitterMs: v.spec.jitterMs,
      paused: v.paused,
      source: v.source,
      createdAt: iso(v.createdAt),
      ...(v.lastTick === undefined ? {} : { lastTick: iso(v.lastTick) }),
      ...(v.lastFired === undefined ? {} : { lastFired: iso(v.lastFired) }),
      ...(fireAt === undefined ? {} : { nextTick: iso(fireAt - delay), nextFireAt: iso(fireAt) }),
    };
  };

  const mustRead = async (name: string): Promise<ScheduleRow> => {
    const row = await readSchedule(ready().host.store, name);
    if (!row) throw new ScheduleNotFoundError(name);
    return row;
  };

  /** Compare-and-set of a change to `paused`, re-reading when another writer came first. */
  const setPaused = async (name: string, paused: boolean): Promise<ScheduleView> => {
    const { host: h, scheduler: s } = ready();
    for (;;) {
      const row = await mustRead(name);
      if (row.value.paused === paused) return view(row);
      const now = h.clock.now();
      // Resumed: counting starts anew, so the ticks that fell while paused are not "missed".
      const value: StoredSchedule = {
        ...row.value,
        paused,
        updatedAt: now,
        ...(paused ? {} : { since: Math.max(now, row.value.since) }),
      };
      const version = await putSchedule(h.store, name, value, row.version, true);
      if (version === undefined) continue;
      const stored = { name, value, version };
      s.follow(name, stored);
      return view(stored);
    }
  };

  const ext: Schedules = {
    name: 'schedules',
    async install(h) {
      for (const d of declarations) await checkTarget(h.engine, d.name, d.spec, false);
      await storeDeclarations(h, declarations);
      host = h;
      // Embedded, a window of 10,000 due schedules starts at once: every tick's invocation is
      // created within the second. On a shared store each start waits for a round trip and the
      // engine's work grows with the invocations in flight: windows of a page go faster there.
      scheduler = new Scheduler(h, { refreshMs, batch: h.store.shared ? 1000 : 10_000 });
    },
    started() {
      const s = scheduler!;
      const start = (): void => {
        s.start().catch((err: unknown) => {
          host?.log('error', `schedules: loading failed, trying again in 5s: ${errorMessage(err)}`);
          host?.clock.setTimer(5000, start);
        });
      };
      start();
    },
    async close() {
      scheduler?.close();
    },
    mounts: { admin: adminMount(() => ext) },
    async list() {
      const { host: h } = ready();
      return (await listSchedules(h.store)).map(view);
    },
    async get(name) {
      ready();
      return view(await mustRead(name));
    },
    async create(raw) {
      const { host: h, scheduler: s } = ready();
      const d = parseSchedule(raw);
      await checkTarget(h.engine, d.name, d.spec, true);
      const now = h.clock.now();
      const value: StoredSchedule = {
        spec: d.spec,
        source: 'api',
        paused: d.paused,
        since: now,
        createdAt: now,
        updatedAt: now,
      };
      const version = await putSchedule(h.store, d.name, value, 0, true);
      if (version === undefined)
        throw new ScheduleConflictError(
          'schedule_exists',
          `a schedule named "${d.name}" exists already: delete it first, or pick another name`,
        );
      const row = { name: d.name, value, version };
      s.follow(d.name, row);
      return view(row);
    },
    pause: (name) => setPaused(name, true),
    resume: (name) => setPaused(name, false),
    async trigger(name) {
      const { host: h } = ready();
      const row = await mustRead(name);
      const id = randomUUID();
      const idempotencyKey = `schedule:${name}:manual:${id}`;
      const sent = await h.send(
        tickRequest(h.engine, name, row.value.spec, `manual-${id}`, idempotencyKey),
      );
      return { ...sent, idempotencyKey };
    },
    async delete(name) {
      const { host: h, scheduler: s } = ready();
      for (;;) {
        const row = await mustRead(name);
        if (row.value.source === 'code')
          throw new ScheduleConflictError(
            'schedule_in_code',
            `schedule "${name}" is declared in the app's code: remove it there (it is deleted at the next start), or pause it`,
          );
        if (await deleteSchedule(h.store, name, row.version, h.clock.now())) break;
      }
      s.follow(name, undefined);
    },
  };
  return ext;
}

function withDelay(t: number | undefined, delay: number): number | undefined {
  return t === undefined ? undefined : t + delay;
}

/**
 * Stores the code's declarations: a new one is created; a changed one (or one of the same name
 * created through the admin API) is replaced, keeping its `lastTick` (a new pattern or timezone
 * counts ticks from now); an unchanged one is left as it is, `paused` included, so a pause made
 * through the admin API outlives restarts. Schedules declared in code before and declared no
 * more are deleted. Compare-and-set throughout: processes starting together agree.
 */
async function storeDeclarations(
  h: ExtensionHost,
  declarations: readonly ScheduleDeclaration[],
): Promise<void> {
  const now = h.clock.now();
  for (const d of declarations) {
    const declared = JSON.stringify({ spec: d.spec, paused: d.paused });
    for (;;) {
      const row = await readSchedule(h.store, d.name);
      const old = row?.value;
      if (old?.source === 'code' && old.declared === declared) break;
      if (old?.source === 'api')
        h.log(
          'warn',
          `schedules: "${d.name}" declared in code replaces the one created through the admin API`,
        );
      const sameTimes =
        old !== undefined && old.spec.cron === d.spec.cron && old.spec.timezone === d.spec.timezone;
      const value: StoredSchedule = {
        spec: d.spec,
        source: 'code',
        paused: d.paused,
        since: sameTimes ? old.since : now,
        ...(old?.lastTick === undefined ? {} : { lastTick: old.lastTick }),
        ...(old?.lastFired === undefined ? {} : { lastFired: old.lastFired }),
        declared,
        createdAt: old?.createdAt ?? now,
        updatedAt: now,
      };
      if ((await putSchedule(h.store, d.name, value, row?.version ?? 0, true)) !== undefined) break;
    }
  }
  const names = new Set(declarations.map((d) => d.name));
  for (const row of await listSchedules(h.store)) {
    if (row.value.source !== 'code' || names.has(row.name)) continue;
    if (await deleteSchedule(h.store, row.name, row.version, now))
      h.log('info', `schedules: "${row.name}" is no longer declared in code: deleted`);
  }
}
