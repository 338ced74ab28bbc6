import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REFUSED, type FuzzCase, type Outcome } from './cases.js';
import { Checker } from './checker.js';
import { startAppProcess, type AppProcess } from './child.js';
import { adminChangeValid, adminInvalid, adminUserInvalid, adminValid } from './gen-admin.js';
import { flowsInvalid, flowsValid } from './gen-flows.js';
import { gatewayInvalid, gatewayValid } from './gen-gateway.js';
import { ingressInvalid, ingressValid } from './gen-ingress.js';
import { oauthInvalid, oauthValid } from './gen-oauth.js';
import { rawInvalid } from './gen-raw.js';
import { schedulesInvalid, schedulesValid } from './gen-schedules.js';
import { receiversInvalid, receiversValid } from './gen-receivers.js';
import { webhooksInvalid, webhooksValid } from './gen-webhooks.js';
import { nextCase, type Generator } from './generator.js';
import { Known } from './known.js';
import { Rand } from './random.js';
import { Sender } from './send.js';
import { ADMIN_TOKEN } from './services.js';
import { diff, StateReader, type Snapshot } from './state.js';

/**
 * The fuzz run: batches of mixed requests (valid ones reach deep code paths and hand out ids),
 * each followed, once the store has settled, by a batch of invalid requests only, sent one at
 * a time with the store's data version read after each: any write is attributed to the request
 * just answered, and one answered 4xx (or not at all) that changed the stored state is a
 * violation. After a request answered 2xx (valid by chance) or not answered, the store is let
 * settle before the next one, so that its late writes are not blamed on that one; a change seen
 * once a timer or delayed invocation has come due is attributed to nobody (and ends the batch).
 * A change asked for with the read-only user token must be refused (403) and is blamed whatever
 * it was answered; a read with it is followed by the same read with the admin token, and both
 * must be answered alike. Every answer is checked for undocumented 5xx and for the answer its
 * case demands (`HttpCase.expect`), and the process must never exit.
 */

export interface FuzzOptions {
  requests: number;
  seed: string;
  /** Stop after this long even if fewer requests were sent (the summary says how many). */
  maxMs?: number;
  /** Requests in flight in a mixed batch. Default 8. */
  concurrency?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface FuzzResult {
  seed: string;
  checker: Checker;
  elapsedMs: number;
  rssBeforeKiB: number | undefined;
  rssAfterKiB: number | undefined;
  /** Invalid requests whose effect on the store was checked one by one. */
  invalidChecked: number;
  /** User-token reads compared with the same read with the admin token (in invalid batches). */
  twinsCompared: number;
  /** Invalid batches run without the state check, because the store did not settle. */
  unsettled: number;
  /** Invocations killed to let the store settle (handlers retrying bad input for a long time). */
  settleKills: number;
  /** Timers and delayed invocations still waiting at the end though due over 10 s ago: stuck work. */
  overdue: number;
  /** Time spent waiting for the store to settle. */
  settleMs: number;
  /**
   * Changes seen in an invalid batch after a timer or delayed invocation came due (a request
   * took long): not attributed to a request; the batch ended there.
   */
  pastDue: number;
  exit: AppProcess['exit'];
  appLog: string[];
}

const GENERATORS: Generator[] = [
  ...ingressValid,
  ...ingressInvalid,
  ...adminValid,
  ...adminChangeValid,
  ...adminInvalid,
  ...adminUserInvalid,
  ...webhooksValid,
  ...webhooksInvalid,
  ...receiversValid,
  ...receiversInvalid,
  ...rawInvalid,
  ...gatewayValid,
  ...gatewayInvalid,
  ...oauthValid,
  ...oauthInvalid,
  ...flowsValid,
  ...flowsInvalid,
  ...schedulesValid,
  ...schedulesInvalid,
];
/** Timers due within this are "soon": an invalid batch never runs while one could fire. */
const HORIZON_MS = 5_000;
/** An invalid batch stops after this long, well inside the horizon. */
const INVALID_BATCH_MS = 3_000;

export async function runFuzz(o: FuzzOptions): Promise<FuzzResult> {
  const log = o.log ?? (() => undefined);
  const concurrency = o.concurrency ?? 8;
  const dir = mkdtempSync(join(tmpdir(), 'keel-fuzz-'));
  const app = await startAppProcess(join(dir, 'fuzz.db'));
  const sender = new Sender({ ingress: app.ingress, admin: app.admin });
  const reader = new StateReader(join(dir, 'fuzz.db'));
  const r = new Rand(o.seed);
  const known = new Known(new URL(app.ingress).host);
  const checker = new Checker();
  const inFlight = new Set<FuzzCase>();
  const started = performance.now();
  const stopAt = started + (o.maxMs ?? Infinity);
  let unsettled = 0;
  let settleKills = 0;
  let invalidChecked = 0;
  let twinsCompared = 0;
  let sent = 0;
  let settleMs = 0;
  let pastDue = 0;

  const exited = (): boolean => {
    if (!app.exit) return false;
    if (!checker.violations.some((v) => v.kind === 'exit')) {
      checker.add({
        kind: 'exit',
        cases: [...inFlight],
        detail: `the app exited (code ${app.exit.code}, signal ${app.exit.signal}) with these requests in flight`,
      });
    }
    return true;
  };

  const exchange = async (c: FuzzCase): Promise<Outcome> => {
    inFlight.add(c);
    sent++;
    const outcome = await sender.send(c);
    inFlight.delete(c);
    if (exited()) return outcome;
    checker.record(c, outcome);
    known.learn(c, outcome);
    return outcome;
  };

  /** Waits until nothing runs and nothing is due; kills lingering invocations once. */
  const settle = async (): Promise<boolean> => {
    const t0 = performance.now();
    try {
      return await settleOnce();
    } finally {
      settleMs += performance.now() - t0;
    }
  };
  const settleOnce = async (): Promise<boolean> => {
    let deadline = Date.now() + 6_000;
    let killed = false;
    for (;;) {
      if (app.exit) return false;
      const a = reader.activity(HORIZON_MS);
      if (a.active === 0 && a.dueSoon === 0) {
        // Compared by content, not by data version: a write that changes nothing we compare
        // (a lease heartbeat) must not keep the store from counting as settled.
        const before = reader.snapshot();
        await sleep(300);
        if (diff(before, reader.snapshot()).length === 0) return true;
      } else await sleep(100);
      if (Date.now() > deadline) {
        if (killed) return false;
        killed = true;
        deadline = Date.now() + 4_000;
        for (const id of reader.activeIds()) {
          settleKills++;
          await sender.send({
            transport: 'http',
            surface: 'admin',
            gen: 'settle',
            valid: true,
            method: 'POST',
            path: `/invocations/${id}/kill`,
            headers: [['authorization', `Bearer ${ADMIN_TOKEN}`]],
          });
        }
      }
    }
  };

  const mixedBatch = async (n: number): Promise<void> => {
    const cases = Array.from({ length: n }, () =>
      nextCase(r, known, GENERATORS, r.chance(0.5) ? 'valid' : 'invalid'),
    );
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < cases.length && !app.exit && performance.now() < stopAt)
        await exchange(cases[next++]!);
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };

  const invalidBatch = async (n: number): Promise<void> => {
    let base: Snapshot = reader.snapshot();
    let version = reader.dataVersion();
    // Until then only a request can change the settled store; after it, a timer or a delayed
    // invocation may have (settle() leaves none due within HORIZON_MS, so only a request that
    // took long lets the batch reach it).
    let dueAt = reader.nextDue();
    let previous: { c: FuzzCase; outcome: Outcome | undefined } | undefined;
    const changed = (): ReturnType<typeof diff> => {
      const v = reader.dataVersion();
      if (v === version) return [];
      version = v;
      const now = reader.snapshot();
      const changes = diff(base, now);
      base = now;
      return changes;
    };
    /** Checks the store after `c`; false when the batch must end (the store is not settled). */
    const check = (c: FuzzCase, outcome: Outcome | undefined): boolean => {
      const changes = changed();
      if (changes.length === 0) return true;
      if (Date.now() >= dueAt) {
        // Work that came due may have made the change: no request can be blamed for it, and
        // the store is no longer settled for the next one.
        pastDue++;
        return false;
      }
      // A 2xx means the generator made a valid request by chance: counted as accepted, not a
      // violation. Not for a read-only case (it changes nothing whatever it is answered), nor
      // for one that must be refused whatever it asks (a change with the user token).
      const mustRefuse = c.transport === 'http' && (c.expect?.status ?? 0) >= 400;
      if (outcome?.status !== undefined && outcome.status < 300 && !c.readOnly && !mustRefuse)
        return true;
      const what = changes
        .map((d) => {
          const sample = d.added[0] ?? d.changed[0] ?? d.removed[0]!;
          const row =
            d.removed[0] === sample
              ? '(removed)'
              : JSON.stringify(reader.row(d.table, sample))?.slice(0, 400);
          return `${d.table}: +${d.added.length} ~${d.changed.length} -${d.removed.length}, e.g. ${row}`;
        })
        .join('; ');
      checker.add({
        kind: 'state_change',
        cases: previous ? [previous.c, c] : [c],
        ...(outcome ? { outcome } : {}),
        detail: `the stored state changed after an invalid request (the last one listed${previous ? '; a late write of the one before it, also refused, is possible' : ''}): ${what}`,
      });
      return true;
    };
    // The batch's time is counted without the waits for the store to settle (each wait ends
    // with nothing due within HORIZON_MS), so that they do not cut the number of checked requests.
    let until = performance.now() + INVALID_BATCH_MS;
    for (let i = 0; i < n && !app.exit && performance.now() < Math.min(until, stopAt); i++) {
      const c = nextCase(r, known, GENERATORS, 'invalid');
      const outcome = await exchange(c);
      invalidChecked++;
      if (c.transport === 'http' && c.twin && !app.exit) {
        // Nothing else runs (the store is settled, requests go one at a time): the admin's
        // answer to the same read a moment later must be the same.
        const twinOutcome = await exchange(c.twin);
        twinsCompared++;
        checker.compareTwin(c, outcome, c.twin, twinOutcome);
      }
      const refused = REFUSED.some((code) => outcome.error?.startsWith(`${code}:`));
      const read = c.readOnly === true && outcome.status !== undefined;
      if (!refused && !read && (outcome.status === undefined || outcome.status < 300)) {
        // What it did may land after its answer (the invocation a 202 started, a request the
        // fuzzer stopped waiting for that the server still serves): wait until the store is
        // settled again, so that all of it is seen here and none is blamed on the next request.
        const waited = performance.now();
        const settled = await settle();
        until += performance.now() - waited;
        previous = undefined;
        if (!check(c, outcome) || !settled) break;
        dueAt = reader.nextDue();
        continue;
      }
      if (!check(c, outcome)) {
        // Not settled any more: no later change, the tail's included, can be attributed.
        previous = undefined;
        break;
      }
      previous = { c, outcome };
    }
    if (previous && !app.exit) {
      // A write that lands after its answer is still caught, attributed to the batch's tail.
      await sleep(50);
      check(previous.c, previous.outcome);
    }
  };

  try {
    await settle();
    const rssBeforeKiB = app.rssKiB();
    log(
      `fuzz: seed ${o.seed}, ${o.requests} requests, app pid ${app.pid}, RSS ${kib(rssBeforeKiB)}`,
    );
    let lastReport = performance.now();
    while (sent < o.requests && !app.exit && performance.now() < stopAt) {
      await mixedBatch(Math.min(r.int(200, 800), o.requests - sent));
      if (sent >= o.requests || app.exit) break;
      const settled = await settle();
      const n = Math.min(r.int(50, 200), o.requests - sent);
      if (settled) await invalidBatch(n);
      else unsettled++;
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        const kinds = new Map<string, number>();
        for (const v of checker.violations) kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
        log(
          `fuzz: ${sent} requests, ${checker.violations.length} violations ${JSON.stringify(Object.fromEntries(kinds))}, RSS ${kib(app.rssKiB())}`,
        );
      }
    }
    await settle();
    const rssAfterKiB = app.rssKiB();
    const overdue = app.exit ? 0 : reader.activity(HORIZON_MS).overdue;
    if (!exited()) {
      const health = await sender.send({
        transport: 'http',
        surface: 'ingress',
        gen: 'final-health',
        valid: true,
        method: 'GET',
        path: '/health',
        headers: [],
      });
      if (health.status !== 200)
        checker.add({
          kind: 'no_answer',
          cases: [],
          outcome: health,
          detail: 'GET /health after the run did not answer 200',
        });
    }
    return {
      seed: o.seed,
      checker,
      elapsedMs: performance.now() - started,
      rssBeforeKiB,
      rssAfterKiB,
      invalidChecked,
      twinsCompared,
      unsettled,
      settleKills,
      settleMs,
      pastDue,
      overdue,
      exit: app.exit,
      appLog: app.log,
    };
  } finally {
    await sender.close();
    reader.close();
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function kib(n: number | undefined): string {
  return n === undefined ? '?' : `${(n / 1024).toFixed(1)} MiB`;
}
