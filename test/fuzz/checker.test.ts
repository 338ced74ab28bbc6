import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';
import type { FuzzCase, HttpCase } from './cases.js';
import { Checker } from './checker.js';
import { diff, StateReader } from './state.js';

// The fuzzer's own checks must be able to fail: a checker that never flags makes every run green.

const get = (gen = 'g', valid = false): HttpCase => ({
  transport: 'http',
  surface: 'ingress',
  gen,
  valid,
  method: 'GET',
  path: '/x',
  headers: [],
});

describe('Checker', () => {
  it('flags an internal 500 and a killed 500, and allows the documented 503s and handler codes', () => {
    const c = new Checker();
    expect(c.record(get(), { status: 500, code: 'internal', ms: 1 })?.kind).toBe(
      'undocumented_5xx',
    );
    expect(c.record(get(), { status: 500, code: 'killed', ms: 1 })?.kind).toBe('undocumented_5xx');
    expect(c.record(get(), { status: 503, code: 'store_unavailable', ms: 1 })).toBeUndefined();
    expect(c.record(get(), { status: 502, code: 'no_carrier', ms: 1 })).toBeUndefined();
    expect(c.record(get(), { status: 503, code: 'made_up', ms: 1 })?.kind).toBe('undocumented_5xx');
    expect(c.violations).toHaveLength(3);
  });

  it('flags an HTTP request left without an answer, but not one the fuzzer abandoned', () => {
    const c = new Checker();
    expect(c.record(get(), { error: 'EPIPE: write EPIPE', ms: 1 })?.kind).toBe('no_answer');
    expect(c.record(get(), { abandoned: true, ms: 1 })).toBeUndefined();
  });

  it('lists invalid requests answered 2xx by generator, without calling them violations', () => {
    const c = new Checker();
    c.record(get('bad-delay'), { status: 202, body: '{}', ms: 1 });
    c.record(get('bad-delay'), { status: 202, body: '{}', ms: 1 });
    c.record(get('greet', true), { status: 200, body: '"hi"', ms: 1 });
    expect(c.acceptedInvalid.get('bad-delay')?.count).toBe(2);
    expect(c.acceptedInvalid.has('greet')).toBe(false);
    expect(c.violations).toEqual([]);
  });

  it('flags a user-token change not answered 403 forbidden, and a user read answered 401 or 403', () => {
    const c = new Checker();
    const change: FuzzCase = {
      ...get('admin-user-change'),
      expect: { status: 403, code: 'forbidden' },
    };
    expect(c.record(change, { status: 403, code: 'forbidden', ms: 1 })).toBeUndefined();
    expect(c.record(change, { status: 202, body: '{}', ms: 1 })?.kind).toBe('wrong_answer');
    expect(c.record(change, { status: 403, code: 'other', ms: 1 })?.kind).toBe('wrong_answer');
    const read: FuzzCase = { ...get('admin-user-read'), readOnly: true, never: [401, 403] };
    expect(c.record(read, { status: 200, body: '{}', ms: 1 })).toBeUndefined();
    expect(c.record(read, { status: 403, code: 'forbidden', ms: 1 })?.kind).toBe('wrong_answer');
    // A read-only case answered 2xx is no "invalid request accepted".
    expect(c.acceptedInvalid.has('admin-user-read')).toBe(false);
    expect(c.violations).toHaveLength(3);
  });

  it("flags a user-token read answered unlike the admin's, up to an open circuit's countdown", () => {
    const c = new Checker();
    const user = get('admin-user-read');
    const admin = get('admin-user-read-twin');
    const health = (ms: number): string => `{"circuit_state":"open","retry_in_ms":${ms}}`;
    expect(
      c.compareTwin(user, { status: 200, body: health(900), ms: 1 }, admin, {
        status: 200,
        body: health(850),
        ms: 1,
      }),
    ).toBeUndefined();
    expect(
      c.compareTwin(user, { status: 200, body: '{"a":1}', ms: 1 }, admin, {
        status: 200,
        body: '{"a":2}',
        ms: 1,
      })?.kind,
    ).toBe('role_mismatch');
    expect(
      c.compareTwin(user, { status: 404, body: '{}', ms: 1 }, admin, {
        status: 200,
        body: '{}',
        ms: 1,
      })?.kind,
    ).toBe('role_mismatch');
  });
});

describe('StateReader', () => {
  it('sees a write of another connection in the data version and in the snapshot diff', async () => {
    const { dir, cleanup } = tempDir('keel-fuzz-state-');
    try {
      const path = join(dir, 'keel.db');
      // The store's own migrations create the tables the reader snapshots.
      await openSqliteStore({ path }).close();
      const reader = new StateReader(path);
      const before = reader.snapshot();
      const version = reader.dataVersion();
      const writer = new Database(path);
      writer
        .prepare(
          "INSERT INTO state (service, key, name, value) VALUES ('Counter', 'k', 'total', '1')",
        )
        .run();
      expect(reader.dataVersion()).not.toBe(version);
      const changes = diff(before, reader.snapshot());
      expect(changes).toEqual([
        { table: 'state', added: ['["Counter","k","total"]'], changed: [], removed: [] },
      ]);
      writer.close();
      reader.close();
    } finally {
      cleanup();
    }
  });

  it('tells when the next timer or delayed invocation comes due, leaving stuck ones out', async () => {
    const { dir, cleanup } = tempDir('keel-fuzz-due-');
    try {
      const path = join(dir, 'keel.db');
      await openSqliteStore({ path }).close();
      const reader = new StateReader(path);
      expect(reader.nextDue()).toBe(Infinity);
      const writer = new Database(path);
      const now = Date.now();
      const timer = writer.prepare(
        'INSERT INTO timers (invocation_id, idx, fire_at) VALUES (?, ?, ?)',
      );
      timer.run('inv_stuck', 0, now - 60_000); // overdue by a minute: stuck, never fires
      timer.run('inv_a', 0, now + 30_000);
      expect(reader.nextDue()).toBe(now + 30_000);
      writer
        .prepare(
          "INSERT INTO invocations (id, service, handler, key, exclusive, status, attempt, retry_index, run_at, created_at, modified_at) VALUES ('inv_b', 'Counter', 'add', 'k', 1, 'scheduled', 0, -1, ?, ?, ?)",
        )
        .run(now + 20_000, now, now);
      expect(reader.nextDue()).toBe(now + 20_000);
      writer.close();
      reader.close();
    } finally {
      cleanup();
    }
  });
});
