/**
 * Event sourcing under kill -9: the app runs in a child process and is killed four times while
 * deposits to four accounts are in flight (appends committing, projector deliveries queued or
 * running), then restarted on the same SQLite file; the client sends every deposit again with
 * its Idempotency-Key until it is acknowledged. Afterwards every deposit is exactly one event,
 * each stream is gap-free, and both projections applied every event exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { StoredEvent } from '../../../src/eventsourcing/index.js';
import { killHard, spawnApp, tempDir } from '../../helpers.js';

const tmp = tempDir('keel-es-crash-');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

const start = () =>
  spawnApp(
    join(import.meta.dirname, 'fixtures/app.ts'),
    { KEEL_DB: join(tmp.dir, 'keel.db') },
    children,
  );

async function post(
  url: string,
  body?: unknown,
  key?: string,
): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(key ? { 'idempotency-key': key } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function poll(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(50);
  }
}

const ACCOUNTS = ['k-1', 'k-2', 'k-3', 'k-4'];
const PER_ACCOUNT = 20;
const DEPOSITS = ACCOUNTS.flatMap((acc, a) =>
  Array.from({ length: PER_ACCOUNT }, (_, i) => ({
    acc,
    ref: `dep-${a}-${i}`,
    amount: 1 + a * 100 + i,
  })),
);

it('no deposit is lost or doubled, and projections apply each event once, across kill -9', async () => {
  let app = await start();
  for (const acc of ACCOUNTS) {
    expect(
      (await post(`${app.url}/BankAccount/${acc}/open`, { owner: acc }, `open-${acc}`)).status,
    ).toBe(200);
  }
  const acked = new Set<string>();
  const send = (url: string) =>
    DEPOSITS.filter((d) => !acked.has(d.ref)).map((d) =>
      post(`${url}/BankAccount/${d.acc}/deposit`, { amount: d.amount, reference: d.ref }, d.ref)
        .then((r) => {
          if (r.status === 200) acked.add(d.ref);
          else if (r.status < 500)
            throw new Error(`deposit ${d.ref}: ${r.status} ${JSON.stringify(r.json)}`);
        })
        .catch((err: Error) => {
          if (err.message.startsWith('deposit')) throw err;
        }),
    );

  const atKill: number[] = [];
  // Four crashes, each once some (not all) deposits of this round were acknowledged.
  for (const killAfter of [10, 25, 40, 55]) {
    const inFlight = send(app.url);
    await poll(`${killAfter} acknowledged deposits`, async () => acked.size >= killAfter);
    await killHard(app.child);
    atKill.push(acked.size);
    await Promise.all(inFlight);
    app = await start();
  }
  // The first kill at least cut deposits in flight (the later ones may find all answered).
  expect(atKill[0]).toBeLessThan(DEPOSITS.length);
  // Everything not yet acknowledged, again with the same keys, until all are.
  while (acked.size < DEPOSITS.length) await Promise.all(send(app.url));

  let events = 0;
  for (const acc of ACCOUNTS) {
    const page = (await post(`${app.url}/BankAccount/${acc}/events`, { limit: 1000 })).json;
    const stream = page.events as StoredEvent[];
    expect(stream.map((e) => e.seq)).toEqual(
      Array.from({ length: PER_ACCOUNT + 1 }, (_, i) => i + 1),
    );
    const refs = stream.slice(1).map((e) => (e.data as { reference: string }).reference);
    expect(refs.sort()).toEqual(
      DEPOSITS.filter((d) => d.acc === acc)
        .map((d) => d.ref)
        .sort(),
    );
    const balance = DEPOSITS.filter((d) => d.acc === acc).reduce((s, d) => s + d.amount, 0);
    expect((await post(`${app.url}/BankAccount/${acc}/state`)).json.state.balance).toBe(balance);
    await poll(`balances of ${acc}`, async () => {
      const v = (await post(`${app.url}/BankAccountProjections/balances/view`, acc)).json.view;
      return v.lastSeq === PER_ACCOUNT + 1;
    });
    const view = (await post(`${app.url}/BankAccountProjections/balances/view`, acc)).json.view;
    // Applied twice, `transactions` would exceed the deposits; skipped, it would fall short.
    expect(view).toMatchObject({ balance, transactions: PER_ACCOUNT, lastSeq: PER_ACCOUNT + 1 });
    events += stream.length;
  }
  await poll(
    'summary',
    async () =>
      (await post(`${app.url}/BankAccountProjections/summary/view`)).json.view.events === events,
  );
  const summary = (await post(`${app.url}/BankAccountProjections/summary/view`)).json.view;
  expect(summary).toEqual({
    accounts: ACCOUNTS.length,
    open: ACCOUNTS.length,
    totalBalance: DEPOSITS.reduce((s, d) => s + d.amount, 0),
    deposited: DEPOSITS.reduce((s, d) => s + d.amount, 0),
    withdrawn: 0,
    events,
  });
  // A rebuild from scratch agrees with what was kept up to date incrementally.
  expect((await post(`${app.url}/BankAccountProjections/summary/rebuild`)).json).toMatchObject({
    events,
  });
  expect((await post(`${app.url}/BankAccountProjections/summary/view`)).json.view).toEqual(summary);
}, 180_000);
