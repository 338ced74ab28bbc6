/**
 * What the order-notifications tests share: an engine on a temporary SQLite file with a fake
 * clock, running a fresh instance of the system (fresh mocks, no API keys), and a restart that
 * builds a new instance, as a new process would.
 */
import { join } from 'node:path';
import { afterEach } from 'vitest';
import {
  createOrderNotifications,
  type OrderNotificationsOptions,
  type OrderNotifications,
  type OrderRecord,
} from '../../../examples/order-notifications/index.js';
import { Engine, type KeelError } from '../../../src/index.js';
import { createIntegrations } from '../../../src/integrations/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { crash, FakeClock, settle } from '../../../src/testing/index.js';
import { tempDir } from '../../helpers.js';

export interface System {
  engine: Engine;
  clock: FakeClock;
  app: OrderNotifications;
  /** Every line logged by the engine and by handlers (`ctx.log`), as `level message`. */
  logs: string[];
  /** Crashes the engine (as kill -9) and starts a new one, with a new instance of the system. */
  crashAndRestart(options?: OrderNotificationsOptions): Promise<void>;
}

/** Starts systems for one test; all are stopped after it. */
export function useSystem(): (options?: OrderNotificationsOptions) => Promise<System> {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return async (options = {}) => {
    const tmp = tempDir('keel-order-notifications-');
    const path = join(tmp.dir, 'keel.db');
    const clock = new FakeClock();
    const logs: string[] = [];
    const boot = async (opts: OrderNotificationsOptions) => {
      const app = createOrderNotifications({ env: {}, now: () => clock.now(), ...opts });
      const engine = new Engine({
        services: app.definitions,
        store: openSqliteStore({ path }),
        clock,
        suspendAfter: '1s',
        logger: (level, message) => logs.push(`${level} ${message}`),
        extensions: [
          createIntegrations({ integrations: app.integrations, env: {}, log: () => undefined }),
        ],
      });
      await engine.start();
      return { app, engine };
    };
    const sys = { clock, logs, ...(await boot(options)) } as System;
    sys.crashAndRestart = async (opts = options) => {
      await crash(sys.engine);
      Object.assign(sys, await boot(opts));
    };
    cleanups.push(async () => {
      await sys.engine.stop().catch(() => undefined);
      tmp.cleanup();
    });
    return sys;
  };
}

/** A valid order for `orderId`, with phone and email; `over` replaces fields. */
export function order(orderId: string, over: Record<string, unknown> = {}) {
  return {
    orderId,
    customerId: 'cust-123',
    customerPhone: '+15558675310',
    customerEmail: 'ann@example.com',
    items: [
      { productId: 'PROD-001', quantity: 2, price: 29.99 },
      { productId: 'PROD-003', quantity: 1, price: 10 },
    ],
    total: 69.98,
    ...over,
  };
}

/** The index of the first journal entry whose name satisfies `match` (-1 when none). */
export function indexOf(journal: { name: string }[], match: string | RegExp): number {
  return journal.findIndex((e) =>
    typeof match === 'string' ? e.name === match : match.test(e.name),
  );
}

/** How a run ended: its record, or its terminal error. */
export type Ended =
  { value: OrderRecord; error?: undefined } | { error: KeelError; value?: undefined };

/**
 * Waits for invocation `id` to end, moving the fake clock a second at a time: the Slack
 * connectors are rate limited (1 message per second), and their limiter waits on the clock.
 */
export async function ended(s: System, id: string): Promise<Ended> {
  let out: Ended | undefined;
  s.engine.attach(id).then(
    (value) => (out = { value: value as OrderRecord }),
    (error: KeelError) => (out = { error }),
  );
  for (let i = 0; i < 300 && out === undefined; i++) {
    await settle(5);
    if (out === undefined) await s.clock.advance('1s');
  }
  if (out === undefined) throw new Error(`invocation ${id} did not end`);
  return out;
}

/** Starts the order `orderId` and waits for it to end. */
export async function placeOrder(
  s: System,
  input: ReturnType<typeof order>,
): Promise<Ended & { id: string }> {
  const { invocationId } = await s.engine.send({
    service: 'NotifiedOrder',
    handler: 'run',
    key: input.orderId,
    input,
  });
  return { id: invocationId, ...(await ended(s, invocationId)) };
}
