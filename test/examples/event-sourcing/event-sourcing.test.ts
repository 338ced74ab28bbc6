/**
 * Seed 004, exercise 2.1 (event sourcing), one `describe` per bullet of the seed: stores all
 * state changes as events, rebuilds state from events, snapshots, event replay, projections;
 * plus optimistic concurrency and malformed input. Real SQLite, real HTTP to the ingress.
 */
import { describe, expect, it } from 'vitest';
import {
  SNAPSHOT_EVERY,
  applyAccount,
  type Account,
} from '../../../examples/event-sourcing/index.js';
import { fold, scopesOf, seqKey } from '../../../src/eventsourcing/storage.js';
import {
  EventSourcingError,
  type EventPage,
  type StoredEvent,
} from '../../../src/eventsourcing/index.js';
import type { Store } from '../../../src/store/types.js';
import { until } from '../../helpers.js';
import { useRig, type Rig } from './support.js';

const rig = useRig();
const S = scopesOf('BankAccount');

/** Opens `id` and makes `n` deposits of 100, 200, ... moving the fake clock 1 s each time. */
async function history(r: Rig, id: string, n: number): Promise<void> {
  expect((await r.post(`/BankAccount/${id}/open`, { owner: 'Ada' })).status).toBe(200);
  for (let i = 1; i <= n; i++) {
    await r.h.clock.advance('1s');
    const res = await r.post(`/BankAccount/${id}/deposit`, { amount: i * 100, reference: `d${i}` });
    expect(res.status).toBe(200);
  }
}

async function allEvents(r: Rig, id: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let from: number | undefined = 1;
  while (from !== undefined) {
    const page: EventPage = (await r.post(`/BankAccount/${id}/events`, { from, limit: 4 })).json;
    out.push(...page.events);
    from = page.next;
  }
  return out;
}

const INITIAL: Account = { status: 'new', balance: 0 };
const replay = (events: StoredEvent[]) => fold(structuredClone(INITIAL), events, applyAccount);

/** The engine's own store (the test reads and doctors what the example wrote). */
function storeOf(r: Rig): Store {
  return (r.h.engine as unknown as { k: { store: Store } }).k.store;
}

describe('stores all state changes as events', () => {
  it('each command appends typed, numbered, timed events; the log is append-only', async () => {
    const r = await rig();
    const opened = await r.post('/BankAccount/acc-1/open', { owner: 'Ada' });
    expect(opened.json).toMatchObject({
      version: 1,
      events: [{ seq: 1, type: 'AccountOpened', data: { owner: 'Ada' } }],
      state: { status: 'open', owner: 'Ada', balance: 0 },
    });
    await r.h.clock.advance('1s');
    await r.post('/BankAccount/acc-1/deposit', { amount: 500 });
    await r.post('/BankAccount/acc-1/withdraw', { amount: 200 });
    const before = await allEvents(r, 'acc-1');
    expect(before.map((e) => [e.seq, e.type])).toEqual([
      [1, 'AccountOpened'],
      [2, 'MoneyDeposited'],
      [3, 'MoneyWithdrawn'],
    ]);
    expect(before[1]!.time).toBe(before[0]!.time + 1000);
    // A refused command appends nothing; later commands leave earlier events untouched.
    const refused = await r.post('/BankAccount/acc-1/withdraw', { amount: 10_000 });
    expect(refused).toMatchObject({ status: 409, json: { code: 'insufficient_funds' } });
    await r.post('/BankAccount/acc-1/deposit', { amount: 1 });
    const after = await allEvents(r, 'acc-1');
    expect(after.slice(0, 3)).toEqual(before);
    expect(after.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('stores one value per event, not a growing state value', async () => {
    const r = await rig();
    await history(r, 'acc-kv', 7);
    const rows = await storeOf(r).listKv(S.events, { prefix: 'acc-kv/' });
    expect(rows.map((row) => row.key)).toEqual(
      Array.from({ length: 8 }, (_, i) => seqKey('acc-kv', i + 1)),
    );
    // Each stored value is exactly its event; the object keeps no state of its own.
    expect(rows.every((row) => (row.value as StoredEvent).seq === rows.indexOf(row) + 1)).toBe(
      true,
    );
  });
});

describe('rebuilds state from events', () => {
  it('the state is the fold of the events, also after a restart and without snapshots', async () => {
    const r = await rig();
    await history(r, 'acc-2', 8);
    await r.post('/BankAccount/acc-2/withdraw', { amount: 50 });
    const events = await allEvents(r, 'acc-2');
    const expected = replay(events);
    expect(expected.balance).toBe((100 * 8 * 9) / 2 - 50);
    expect((await r.post('/BankAccount/acc-2/state')).json).toMatchObject({
      version: 10,
      state: expected,
    });
    await r.restart();
    expect((await r.post('/BankAccount/acc-2/state')).json).toMatchObject({
      version: 10,
      state: expected,
    });
    // Delete every snapshot: the state comes from the events alone.
    const store = storeOf(r);
    const snaps = await store.listKv(S.snapshots, { prefix: 'acc-2/' });
    expect(snaps.length).toBe(2);
    await store.write(snaps.map((s) => ({ op: 'kv.delete', scope: S.snapshots, key: s.key })));
    const head = await store.getKv(S.heads, 'acc-2');
    await store.write([
      {
        op: 'kv.put',
        scope: S.heads,
        key: 'acc-2',
        value: { ...(head!.value as object), snapshot: 0 },
      },
    ]);
    expect((await r.post('/BankAccount/acc-2/state')).json).toMatchObject({
      version: 10,
      state: expected,
    });
    // And a command decides against the rebuilt state.
    const res = await r.post('/BankAccount/acc-2/withdraw', { amount: expected.balance + 1 });
    expect(res.json.code).toBe('insufficient_funds');
  });
});

describe('implements snapshots', () => {
  it(`stores a snapshot every ${SNAPSHOT_EVERY} events and loads from the latest`, async () => {
    const r = await rig();
    await history(r, 'acc-3', 11); // 12 events: snapshots after 5 and 10
    const store = storeOf(r);
    const snaps = await store.listKv(S.snapshots, { prefix: 'acc-3/' });
    const events = await allEvents(r, 'acc-3');
    expect(snaps.map((s) => (s.value as { seq: number }).seq)).toEqual([5, 10]);
    expect((snaps[1]!.value as { state: Account }).state).toEqual(replay(events.slice(0, 10)));
    expect((await store.getKv(S.heads, 'acc-3'))!.value).toMatchObject({
      version: 12,
      snapshot: 10,
    });
    // Proof that the state starts at the snapshot, not at event 1: a doctored snapshot shows.
    await store.write([
      {
        op: 'kv.put',
        scope: S.snapshots,
        key: seqKey('acc-3', 10),
        value: {
          ...(snaps[1]!.value as object),
          state: { status: 'open', owner: 'Ada', balance: 7 },
        },
      },
    ]);
    const state = (await r.post('/BankAccount/acc-3/state')).json;
    expect(state.state.balance).toBe(7 + 1000 + 1100);
    // Replaying to a point before the snapshot does not use it.
    expect((await r.post('/BankAccount/acc-3/stateAt', { seq: 9 })).json.state).toEqual(
      replay(events.slice(0, 9)),
    );
  });
});

describe('handles event replay', () => {
  it('state at any seq and at any time, and the events from any point', async () => {
    const r = await rig();
    await history(r, 'acc-4', 12);
    const events = await allEvents(r, 'acc-4');
    for (const k of [0, 1, 4, 5, 6, 10, 13]) {
      const at = (await r.post('/BankAccount/acc-4/stateAt', { seq: k })).json;
      expect(at.version).toBe(k);
      expect(at.state).toEqual(replay(events.slice(0, k)));
    }
    // By time: the state after the last event at or before t (ISO dates too).
    const t = events[6]!.time;
    expect((await r.post('/BankAccount/acc-4/stateAt', { time: t + 500 })).json).toMatchObject({
      version: 7,
      state: replay(events.slice(0, 7)),
    });
    const iso = new Date(t).toISOString();
    expect((await r.post('/BankAccount/acc-4/stateAt', { time: iso })).json.version).toBe(7);
    expect(
      (await r.post('/BankAccount/acc-4/stateAt', { time: events[0]!.time - 1 })).json.version,
    ).toBe(0);
    // Events from k.
    const page = (await r.post('/BankAccount/acc-4/events', { from: 11, limit: 2 })).json;
    expect(page.events.map((e: StoredEvent) => e.seq)).toEqual([11, 12]);
    expect(page.next).toBe(13);
    const tail = (await r.post('/BankAccount/acc-4/events', { from: 13 })).json;
    expect(tail).toEqual({ events: [events[12]], version: 13 });
  });

  it('refuses malformed replay queries with 400 invalid_event_query', async () => {
    const r = await rig();
    await history(r, 'acc-5', 1);
    for (const [handler, body] of [
      ['stateAt', { seq: 3 }],
      ['stateAt', { seq: -1 }],
      ['stateAt', { time: 'yesterday' }],
      ['stateAt', {}],
      ['stateAt', 'x'],
      ['events', { from: 0 }],
      ['events', { limit: 5000 }],
      ['events', 'x'],
    ] as const) {
      const res = await r.post(`/BankAccount/acc-5/${handler}`, body);
      expect({ handler, body, status: res.status, code: res.json.code }).toEqual({
        handler,
        body,
        status: 400,
        code: 'invalid_event_query',
      });
    }
  });
});

describe('supports projections', () => {
  const projection = (r: Rig, name: string, key?: string) =>
    r.post(`/BankAccountProjections/${name}/view`, key).then((x) => x.json.view);

  it('keeps per-account balances and a summary up to date, each event once', async () => {
    const r = await rig();
    await history(r, 'p-1', 3);
    await history(r, 'p-2', 2);
    await r.post('/BankAccount/p-2/withdraw', { amount: 300 });
    await r.post('/BankAccount/p-2/close');
    await until(async () => (await projection(r, 'summary')).events === 9, 'summary caught up');
    expect(await projection(r, 'summary')).toEqual({
      accounts: 2,
      open: 1,
      totalBalance: 600,
      deposited: 900,
      withdrawn: 300,
      events: 9,
    });
    await until(async () => (await projection(r, 'balances', 'p-2')).lastSeq === 5, 'balances');
    expect(await projection(r, 'balances', 'p-1')).toEqual({
      owner: 'Ada',
      balance: 600,
      status: 'open',
      transactions: 3,
      lastSeq: 4,
    });
    expect(await projection(r, 'balances', 'p-2')).toMatchObject({ balance: 0, status: 'closed' });
    // A second delivery of the same events applies nothing.
    expect(
      (await r.post('/BankAccountProjections/summary/deliver', { aggregate: 'p-1' })).json,
    ).toEqual({
      applied: 0,
    });
    expect((await r.post('/BankAccountProjections/summary/cursors')).json).toEqual({
      'p-1': 4,
      'p-2': 5,
    });
  });

  it('rebuilds a projection from scratch from all events', async () => {
    const r = await rig();
    await history(r, 'q-1', 4);
    await history(r, 'q-2', 1);
    await until(async () => (await projection(r, 'summary')).events === 7, 'summary caught up');
    const good = await projection(r, 'summary');
    // Damage the views (an operator's mistake, a bug in an old apply): rebuild repairs them.
    const store = storeOf(r);
    const views = 'keel.es.BankAccount.proj.summary.views';
    await store.write([
      { op: 'kv.put', scope: views, key: 'all', value: { ...good, totalBalance: -1 } },
      { op: 'kv.put', scope: views, key: 'stray', value: 1 },
    ]);
    const report = (await r.post('/BankAccountProjections/summary/rebuild')).json;
    expect(report).toEqual({ aggregates: 2, events: 7, views: 1 });
    expect(await projection(r, 'summary')).toEqual(good);
    expect(
      (await r.post('/BankAccountProjections/summary/views')).json.map(
        (v: { key: string }) => v.key,
      ),
    ).toEqual(['all']);
    // After the rebuild, new events still land once.
    await r.post('/BankAccount/q-2/deposit', { amount: 5 });
    await until(async () => (await projection(r, 'summary')).events === 8, 'new event projected');
    expect((await projection(r, 'summary')).totalBalance).toBe(good.totalBalance + 5);
  });

  it('catchUp applies events a projection never saw', async () => {
    const r = await rig();
    await history(r, 'c-1', 2);
    await until(async () => (await projection(r, 'balances', 'c-1')).lastSeq === 3, 'balances');
    // Forget the cursor and the view, as for a projection added after the events.
    await storeOf(r).write([
      { op: 'kv.delete', scope: 'keel.es.BankAccount.proj.balances.cursors', key: 'c-1' },
      { op: 'kv.delete', scope: 'keel.es.BankAccount.proj.balances.views', key: 'c-1' },
    ]);
    expect((await r.post('/BankAccountProjections/balances/catchUp')).json).toEqual({ applied: 3 });
    expect(await projection(r, 'balances', 'c-1')).toMatchObject({ balance: 300, lastSeq: 3 });
    expect((await r.post('/BankAccountProjections/nope/view')).json.code).toBe(
      'invalid_event_query',
    );
  });
});

describe('optimistic concurrency and input', () => {
  it('expectedVersion: 409 version_conflict when stale, nothing appended', async () => {
    const r = await rig();
    await history(r, 'v-1', 1);
    const stale = await r.post('/BankAccount/v-1/deposit', { amount: 5, expectedVersion: 1 });
    expect(stale).toMatchObject({ status: 409, json: { code: 'version_conflict' } });
    expect(stale.json.message).toContain('at version 2, not 1');
    const ok = await r.post('/BankAccount/v-1/deposit', { amount: 5, expectedVersion: 2 });
    expect(ok.json.version).toBe(3);
    const bad = await r.post('/BankAccount/v-1/deposit', { amount: 5, expectedVersion: 'x' });
    expect(bad).toMatchObject({ status: 400, json: { code: 'invalid_event_query' } });
    expect((await r.post('/BankAccount/v-1/state')).json.version).toBe(3);
    // From code, the error comes back as its class (its code is registered).
    const err: unknown = await r.h.engine
      .invoke({
        service: 'BankAccount',
        handler: 'deposit',
        key: 'v-1',
        input: { amount: 1, expectedVersion: 0 },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventSourcingError);
    expect((err as EventSourcingError).code).toBe('version_conflict');
  });

  it('refuses bad commands with a clear error and appends nothing', async () => {
    const r = await rig();
    expect((await r.post('/BankAccount/i-1/deposit', { amount: 5 })).json.code).toBe(
      'account_not_open',
    );
    expect((await r.post('/BankAccount/i-1/open', {})).json.code).toBe('invalid_owner');
    await history(r, 'i-1', 0);
    for (const amount of [0, -5, 1.5, '10', null]) {
      const res = await r.post('/BankAccount/i-1/deposit', { amount });
      expect(res).toMatchObject({ status: 400, json: { code: 'invalid_amount' } });
    }
    expect((await r.post('/BankAccount/i-1/open', { owner: 'Bob' })).json.code).toBe(
      'account_exists',
    );
    expect((await r.post('/BankAccount/i-1/state')).json.version).toBe(1);
  });
});
