import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, service } from '../../src/index.js';
import {
  createIntegrations,
  integration,
  type IntegrationRuntime,
} from '../../src/integrations/index.js';
import { RATE_LIMIT_SCOPE } from '../../src/integrations/shared/shared-limiter.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store, WriteOp } from '../../src/store/types.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { tempDir, until } from '../helpers.js';

/**
 * A rate limit shared through the store: two engine instances on one SQLite file issue 300
 * calls against "100 per second". The limiter paces from an empty bucket, so the 300th call
 * cannot leave before 3 s have passed, whichever instance sends it; permits are leased in blocks,
 * so the store sees a few dozen writes, not 300. Time is a fake clock both engines share: the
 * test moves it and lets the calls it releases land before moving it again.
 */
let api: ProviderServer;
const tmp = tempDir('keel-ratelimit-');
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
  tmp.cleanup();
});

const Noop = service({ name: 'Noop', handlers: { noop: async () => null } });

describe('rate limit shared through the store', () => {
  it('two instances, 300 calls, 100/s: spread over at least 3 s of arrivals', async () => {
    const file = join(tmp.dir, 'keel.db');
    const clock = new FakeClock();
    const limited = integration({
      name: 'Limited',
      baseUrl: api.url,
      rateLimit: { requests: 100, per: '1s' },
      operations: { ping: { path: '/ping' } },
    });
    let limiterWrites = 0;
    const engines: Engine[] = [];
    const runtimes: IntegrationRuntime[] = [];
    for (let i = 0; i < 2; i++) {
      const store = openSqliteStore({ path: file });
      const write = store.write.bind(store);
      // Counts the limiter's compare-and-sets, to show that permits are leased in blocks.
      (store as Store).write = (ops: WriteOp[]) => {
        limiterWrites += ops.filter(
          (o) => o.op === 'kv.put' && o.scope === RATE_LIMIT_SCOPE,
        ).length;
        return write(ops);
      };
      const integrations = createIntegrations({ log: () => undefined });
      const engine = new Engine({
        services: [Noop],
        store,
        clock,
        logger: () => undefined,
        extensions: [integrations],
      });
      await engine.start();
      runtimes.push(integrations.runtime);
      engines.push(engine);
    }
    try {
      const [a, b] = runtimes.map((r) => r.client(limited));
      const before = api.requests.length;
      const arrived = (): number => api.requests.length - before;
      const start = clock.now();
      let answered = 0;
      const calls = Array.from({ length: 300 }, (_, i) =>
        (i % 2 === 0 ? a! : b!).ping().finally(() => answered++),
      );
      // Settled: every request that left was answered, and no more leave at this time.
      const settled = async (): Promise<void> => {
        let last = -1;
        let same = 0;
        await until(
          () => {
            const n = arrived();
            same = n === answered && n === last ? same + 1 : 0;
            last = n;
            return same >= 5 || answered === 300;
          },
          'the calls released at this time to be answered',
          5000,
        );
      };
      // Up to 1 ms short of 3 s, in steps of 20 ms: not all 300 may have left yet.
      await settled();
      while (clock.now() < start + 2999) {
        await clock.advance(Math.min(20, start + 2999 - clock.now()));
        await settled();
      }
      expect(answered).toBe(arrived());
      expect(arrived()).toBeLessThan(300);
      // ... and the rest leave as time goes on.
      while (answered < 300 && clock.now() < start + 10_000) {
        await clock.advance(20);
        await settled();
      }
      expect(answered).toBe(300);
      const results = await Promise.all(calls);
      expect(results.every((r) => (r as { ok?: boolean }).ok === true)).toBe(true);
      expect(arrived()).toBe(300);
      // Leased in blocks of up to 10: well under one write per call.
      expect(limiterWrites).toBeLessThan(100);
      expect(limiterWrites).toBeGreaterThanOrEqual(30);
    } finally {
      for (const r of runtimes) await r.close();
      for (const e of engines) await e.stop();
    }
  });
});
