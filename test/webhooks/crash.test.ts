import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killHard, spawnApp, tempDir } from '../helpers.js';
import { receiver, verifiesIndependently, type Receiver } from './helpers.js';

/**
 * kill -9 while deliveries are in flight, then restart: every published event reaches the
 * endpoint, and the only repeats are deliveries whose attempt the crash interrupted (at least
 * once), with the same webhook-id and body.
 */
const tmp = tempDir('keel-webhook-crash-');
const children: ChildProcess[] = [];
let r: Receiver | undefined;
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await r?.close();
  tmp.cleanup();
});

const ORDERS = 400;

describe('webhook delivery across kill -9', () => {
  it('loses no event and repeats only interrupted attempts', async () => {
    const killedAt: { count: number } = { count: Infinity };
    // The first 120 requests are answered; later ones are held until the kill, so the kill
    // always finds deliveries done, deliveries in flight, and deliveries not started.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let killed = false;
    const rec = await receiver((n) =>
      n < 120 || killed ? { status: 200 } : { status: 200, hold: held },
    );
    r = rec;
    const env = {
      KEEL_DB: join(tmp.dir, 'keel.db'),
      RECEIVER_URL: rec.url,
      SECRET_FILE: join(tmp.dir, 'secret'),
    };
    const fixture = join(import.meta.dirname, 'fixtures/webhook-app.ts');
    const first = await spawnApp(fixture, env, children);

    const accepted = await Promise.all(
      Array.from({ length: ORDERS }, (_, i) =>
        fetch(`${first.url}/Orders/o-${i}/ship/send`, { method: 'POST' }).then((res) => res.status),
      ),
    );
    expect(accepted.every((s) => s === 202)).toBe(true);
    const deadline = Date.now() + 20_000;
    while (rec.requests.length < 120 && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 1));
    await killHard(first.child);
    killed = true;
    release();
    killedAt.count = rec.requests.length;
    const beforeKill = new Set(rec.requests.map((q) => q.headers['webhook-id'] as string));
    // The kill must have interrupted the run, or this proves nothing.
    expect(beforeKill.size).toBeGreaterThan(0);
    expect(beforeKill.size).toBeLessThan(ORDERS);

    const second = await spawnApp(fixture, env, children);
    const distinct = () => new Set(rec.requests.map((q) => q.headers['webhook-id'] as string));
    const until = Date.now() + 30_000;
    while (distinct().size < ORDERS && Date.now() < until)
      await new Promise((res) => setTimeout(res, 5));
    expect(distinct().size).toBe(ORDERS);

    const secret = readFileSync(env.SECRET_FILE, 'utf8');
    const byId = new Map<string, string[]>();
    for (const q of rec.requests) {
      expect(verifiesIndependently(secret, q)).toBe(true);
      const id = q.headers['webhook-id'] as string;
      byId.set(id, [...(byId.get(id) ?? []), q.body]);
    }
    // One message per order: no order published twice.
    const orders = [...byId.values()].map(
      (bodies) => (JSON.parse(bodies[0]!) as { data: { orderId: string } }).data.orderId,
    );
    expect(new Set(orders).size).toBe(ORDERS);
    // Repeats: same body, and only for deliveries the first process had started.
    let repeats = 0;
    for (const [id, bodies] of byId) {
      if (bodies.length === 1) continue;
      repeats += bodies.length - 1;
      expect(new Set(bodies).size).toBe(1);
      expect(
        beforeKill.has(id),
        `${id} repeated without having been attempted before the kill`,
      ).toBe(true);
    }
    // Attempts whose result was durable before the kill were not made again.
    expect(repeats).toBeLessThan(beforeKill.size);
    console.log(
      `webhook crash test: ${killedAt.count} requests before the kill, ${rec.requests.length} in all, ${repeats} repeated attempts`,
    );
    second.child.kill('SIGTERM');
  }, 60_000);
});
