import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

/**
 * The app's stored state, read through a read-only SQLite connection of its own: what the
 * invalid requests must not change. `processes` is left out: it holds the cluster lease
 * heartbeat, which changes with time alone.
 */
const TABLES: Record<string, string> = {
  invocations: 'seq',
  journal: 'invocation_id, idx',
  state: 'service, key, name',
  timers: 'invocation_id, idx',
  promises: 'service, key, name',
  promise_waiters: 'invocation_id, idx',
  key_locks: 'service, key',
  kv: 'scope, key',
};

/** Per table: a row's primary key (as JSON) to a hash of the whole row. */
export type Snapshot = Map<string, Map<string, string>>;

export class StateReader {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path, { readonly: true, fileMustExist: true });
  }

  /** Changes whenever another connection commits: the cheap check run after every request. */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  snapshot(): Snapshot {
    const snap: Snapshot = new Map();
    const read = this.db.transaction(() => {
      for (const [table, pk] of Object.entries(TABLES)) {
        const cols = pk.split(', ');
        const rows = new Map<string, string>();
        for (const row of this.db
          .prepare(`SELECT * FROM ${table} ORDER BY ${pk}`)
          .iterate() as Iterable<Record<string, unknown>>) {
          const text = JSON.stringify(row);
          rows.set(
            JSON.stringify(cols.map((c) => row[c])),
            createHash('sha1').update(text).digest('base64'),
          );
        }
        snap.set(table, rows);
      }
    });
    read();
    return snap;
  }

  /**
   * What is moving or due: the store is settled when nothing is active and nothing is due within
   * `horizonMs`. Work overdue by more than 10 s is stuck (never fired): counted apart, so that a
   * stranded invocation is reported instead of keeping the store from ever settling.
   */
  activity(horizonMs: number): { active: number; dueSoon: number; overdue: number } {
    const active = this.db
      .prepare(
        "SELECT count(*) AS n FROM invocations WHERE status IN ('pending', 'running', 'backing-off')",
      )
      .get() as { n: number };
    const now = Date.now();
    const due = (from: number, to: number): number => {
      const t = this.db
        .prepare('SELECT count(*) AS n FROM timers WHERE fire_at > ? AND fire_at <= ?')
        .get(from, to) as { n: number };
      const s = this.db
        .prepare(
          "SELECT count(*) AS n FROM invocations WHERE status = 'scheduled' AND run_at > ? AND run_at <= ?",
        )
        .get(from, to) as { n: number };
      return t.n + s.n;
    };
    return {
      active: active.n,
      dueSoon: due(now - 10_000, now + horizonMs),
      overdue: due(Number.MIN_SAFE_INTEGER, now - 10_000),
    };
  }

  /**
   * When the next timer or delayed invocation comes due (epoch ms; Infinity when none), not
   * counting the overdue (stuck) ones {@link activity} reports apart. Until then, nothing but a
   * request can change the settled store.
   */
  nextDue(): number {
    const after = Date.now() - 10_000;
    const t = this.db
      .prepare('SELECT min(fire_at) AS at FROM timers WHERE fire_at > ?')
      .get(after) as { at: number | null };
    const s = this.db
      .prepare(
        "SELECT min(run_at) AS at FROM invocations WHERE status = 'scheduled' AND run_at > ?",
      )
      .get(after) as { at: number | null };
    return Math.min(t.at ?? Infinity, s.at ?? Infinity);
  }

  /** Ids of invocations still active (settling kills them through the admin API when they linger). */
  activeIds(): string[] {
    return (
      this.db
        .prepare(
          "SELECT id FROM invocations WHERE status IN ('pending', 'running', 'backing-off') LIMIT 100",
        )
        .all() as { id: string }[]
    ).map((r) => r.id);
  }

  /** One row of a table, for a report. */
  row(table: string, key: string): unknown {
    const pk = TABLES[table]!.split(', ');
    const values = JSON.parse(key) as unknown[];
    return this.db
      .prepare(`SELECT * FROM ${table} WHERE ${pk.map((c) => `${c} IS ?`).join(' AND ')}`)
      .get(...values);
  }

  close(): void {
    this.db.close();
  }
}

/** What changed between two snapshots: `table: +added ~changed -removed` with the keys. */
export function diff(
  before: Snapshot,
  after: Snapshot,
): { table: string; added: string[]; changed: string[]; removed: string[] }[] {
  const out = [];
  for (const [table, rows] of after) {
    const old = before.get(table) ?? new Map<string, string>();
    const added: string[] = [];
    const changed: string[] = [];
    const removed: string[] = [];
    for (const [k, h] of rows) {
      const was = old.get(k);
      if (was === undefined) added.push(k);
      else if (was !== h) changed.push(k);
    }
    for (const k of old.keys()) if (!rows.has(k)) removed.push(k);
    if (added.length + changed.length + removed.length > 0)
      out.push({ table, added, changed, removed });
  }
  return out;
}
