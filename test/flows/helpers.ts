import { join } from 'node:path';
import { Engine, type EngineExtension } from '../../src/index.js';
import { createIntegrations, integration } from '../../src/integrations/index.js';
import { createFlows, type FlowsOptions } from '../../src/flows/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

/** The fake shop's API as one integration with one operation per route, no retries of its own. */
export function shopApi(url: string) {
  return integration({
    name: 'Shop',
    baseUrl: url,
    retry: false,
    operations: {
      reserve: { method: 'POST', path: '/inventory/reserve' },
      release: { method: 'POST', path: '/inventory/release' },
      charge: { method: 'POST', path: '/payments/charge' },
      refund: { method: 'POST', path: '/payments/refund' },
      ship: { method: 'POST', path: '/shipping/ship' },
      quote: { method: 'GET', path: '/quote' },
    },
  });
}

/** Engines with integrations and flows on one SQLite file: `make()` again is a restart. */
export function flowEngines(
  shopUrl: string,
  flows: FlowsOptions = {},
  more: () => EngineExtension[] = () => [],
): { make: () => Promise<Engine>; stop: () => Promise<void>; cleanup: () => void } {
  const { dir, cleanup } = tempDir('keel-flows-');
  const path = join(dir, 'keel.db');
  let current: Engine | undefined;
  return {
    async make() {
      await current?.stop().catch(() => undefined);
      const engine = new Engine({
        services: [],
        store: openSqliteStore({ path }),
        extensions: [
          createIntegrations({ integrations: [shopApi(shopUrl)], log: () => undefined }),
          ...more(),
          createFlows(flows),
        ],
        logger: process.env.KEEL_TEST_DEBUG ? (l, m) => console.log(l, m) : () => undefined,
      });
      await engine.start();
      current = engine;
      return engine;
    },
    async stop() {
      await current?.stop().catch(() => undefined);
      current = undefined;
    },
    cleanup,
  };
}

/** The step names of an invocation's journal, `ctx.run` entries only, in order. */
export async function stepNames(engine: Engine, invocationId: string): Promise<string[]> {
  const journal = await engine.getJournal(invocationId);
  return journal.filter((e) => e.kind === 'run').map((e) => e.name);
}
