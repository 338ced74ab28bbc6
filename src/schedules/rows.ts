/**
 * Schedules in the store's key-value space: one value per schedule in scope `keel.schedules`
 * (its spec, its state), and a change counter in `keel.schedules.meta` that every change of a
 * spec or of `paused` bumps in the same write, so another process notices a change by reading
 * one value instead of listing every schedule.
 */
import type { KvRow, Store, WriteOp } from '../store/types.js';
import type { ScheduleSpec } from './spec.js';

export const SCOPE = 'keel.schedules';
const META_SCOPE = 'keel.schedules.meta';
const META_KEY = 'changes';

/** A schedule as stored. Times are epoch milliseconds. */
export interface StoredSchedule {
  spec: ScheduleSpec;
  /** `code`: declared in the app's code (replaced at start when the declaration changed); `api`: created through the admin API. */
  source: 'code' | 'api';
  paused: boolean;
  /** Ticks at or before this are never fired: the creation, the last resume, a change of pattern or timezone. */
  since: number;
  /** The latest tick handled (fired, or passed over by the missed-tick policy). */
  lastTick?: number;
  /** The latest tick fired. */
  lastFired?: number;
  /** A code declaration's spec and `paused` as JSON: unchanged at the next start, the stored one is kept as it is. */
  declared?: string;
  createdAt: number;
  updatedAt: number;
}

/** A stored schedule with its name and the version its compare-and-set writes expect. */
export interface ScheduleRow {
  name: string;
  value: StoredSchedule;
  version: number;
}

export function toRow(name: string, kv: KvRow): ScheduleRow {
  return { name, value: kv.value as StoredSchedule, version: kv.version };
}

export async function readSchedule(store: Store, name: string): Promise<ScheduleRow | undefined> {
  const kv = await store.getKv(SCOPE, name);
  return kv === undefined ? undefined : toRow(name, kv);
}

/** Every stored schedule, in name order. */
export async function listSchedules(store: Store): Promise<ScheduleRow[]> {
  const out: ScheduleRow[] = [];
  for (let after = ''; ;) {
    const page = await store.listKv(SCOPE, { after, limit: 1000 });
    for (const r of page) out.push(toRow(r.key, r));
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.key;
  }
}

/** A page of {@link listSchedules}, and the most names {@link readSchedules} reads at once. */
const PAGE = 1000;

/**
 * The stored rows of `names` (undefined: deleted), in chunks as they are read. Many of the
 * `total` schedules (a tick they share): the scope is read page by page, each page yielding its
 * rows of `names`, so 10,000 rows cost 10 reads, not 10,000; the names no page had come last.
 * A few: one read each, a chunk at a time, concurrently (a shared store's round trips overlap).
 * Either way the first chunk comes before the rest is read, so its work starts at once.
 */
export async function* readSchedules(
  store: Store,
  names: readonly string[],
  total: number,
): AsyncGenerator<Array<[string, ScheduleRow | undefined]>> {
  if (names.length >= 256 && names.length * 4 >= total) {
    const left = new Set(names);
    for (let after = ''; left.size > 0;) {
      const page = await store.listKv(SCOPE, { after, limit: PAGE });
      const found: Array<[string, ScheduleRow]> = [];
      for (const r of page) if (left.delete(r.key)) found.push([r.key, toRow(r.key, r)]);
      if (found.length > 0) yield found;
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.key;
    }
    if (left.size > 0) yield [...left].map((name) => [name, undefined]);
    return;
  }
  for (let i = 0; i < names.length; i += PAGE / 2) {
    const chunk = names.slice(i, i + PAGE / 2);
    const rows = await Promise.all(chunk.map((name) => readSchedule(store, name)));
    yield chunk.map((name, j) => [name, rows[j]]);
  }
}

/** The change counter's version (0 before any change). */
export async function changeCount(store: Store): Promise<number> {
  return (await store.getKv(META_SCOPE, META_KEY))?.version ?? 0;
}

/** The op that tells other processes a spec or `paused` changed (written with the change). */
export function noteChange(now: number): WriteOp {
  return { op: 'kv.put', scope: META_SCOPE, key: META_KEY, value: now };
}

/** The compare-and-set of a schedule's value: written only while its version is `expect` (0: absent). */
export function putOp(name: string, value: StoredSchedule, expect: number): WriteOp {
  return { op: 'kv.put', scope: SCOPE, key: name, value, expectVersion: expect };
}

/**
 * Stores `value` if the stored version is still `expect` (0: absent); with `changed`, bumps the
 * change counter in the same write. Resolves with the new version, or undefined when another
 * writer came first.
 */
export async function putSchedule(
  store: Store,
  name: string,
  value: StoredSchedule,
  expect: number,
  changed: boolean,
): Promise<number | undefined> {
  const ops: WriteOp[] = [putOp(name, value, expect)];
  if (changed) ops.push(noteChange(value.updatedAt));
  const [result] = (await store.write(ops)) as Array<{ ok: boolean; version: number }>;
  return result?.ok ? result.version : undefined;
}

/** Deletes the schedule at version `expect`; false when it changed (or went) meanwhile. */
export async function deleteSchedule(
  store: Store,
  name: string,
  expect: number,
  now: number,
): Promise<boolean> {
  const [result] = (await store.write([
    { op: 'kv.delete', scope: SCOPE, key: name, expectVersion: expect },
    noteChange(now),
  ])) as Array<{ ok: boolean }>;
  return result?.ok === true;
}
