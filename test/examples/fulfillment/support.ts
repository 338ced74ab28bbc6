/**
 * What the fulfillment tests share: an engine on a fresh SQLite file with a fake clock, the
 * webhooks extension (the example's receivers) and the integrations extension (Twilio in mock
 * mode), its ingress on a real port; and signed webhooks posted to it over HTTP.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Engine } from '../../../src/index.js';
import { createIntegrations } from '../../../src/integrations/index.js';
import { serve, type IngressServer } from '../../../src/ingress/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { FakeClock } from '../../../src/testing/index.js';
import { createWebhooks, standardWebhooks } from '../../../src/webhooks/index.js';
import {
  definitions,
  integrations,
  receivers,
  webhookSecrets,
} from '../../../examples/fulfillment/index.js';
import type { FulfillmentStatus } from '../../../examples/fulfillment/orchestrator.js';
import { tempDir, until } from '../../helpers.js';

export interface Rig {
  engine: Engine;
  clock: FakeClock;
  ingress: IngressServer;
  logs: string[];
  /** POST to the ingress; the status and the parsed body. */
  post<T = any>(path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** The orchestrator's status for an order, through the ingress. */
  status(orderId: string): Promise<FulfillmentStatus>;
  /** Waits (without moving the clock) until the order's status satisfies `cond`. */
  untilStatus(
    orderId: string,
    cond: (s: FulfillmentStatus) => boolean,
    what: string,
  ): Promise<FulfillmentStatus>;
  /**
   * Posts a webhook signed as the warehouse or carrier would (Standard Webhooks, timestamp from
   * the fake clock); `secret` overrides the right one.
   */
  webhook(
    from: 'warehouse' | 'carrier',
    type: string,
    data: Record<string, unknown>,
    options?: { id?: string; secret?: string },
  ): Promise<{ status: number; json: any }>;
}

/** A fresh rig for one test, closed after it. Call inside a test. */
export function useRig(): () => Promise<Rig> {
  const open: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of open.splice(0)) await close();
  });
  return async () => {
    const { dir, cleanup } = tempDir('keel-fulfillment-');
    const clock = new FakeClock();
    const logs: string[] = [];
    const engine = new Engine({
      services: definitions,
      store: openSqliteStore({ path: join(dir, 'keel.db') }),
      clock,
      suspendAfter: '1s',
      logger: (level, message) => logs.push(`${level} ${message}`),
      extensions: [
        createWebhooks({ receivers }),
        createIntegrations({ integrations, mock: true, env: {}, log: () => undefined }),
      ],
    });
    await engine.start();
    const ingress = await serve(engine, { port: 0 });
    open.push(async () => {
      await ingress.close();
      await engine.stop().catch(() => undefined);
      cleanup();
    });
    const post: Rig['post'] = async (path, body) => {
      const res = await fetch(`${ingress.url}${path}`, {
        method: 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    };
    const status = async (orderId: string) =>
      (await post<FulfillmentStatus>(`/FulfillmentOrchestrator/${orderId}/status`)).json;
    const secrets = webhookSecrets({});
    return {
      engine,
      clock,
      ingress,
      logs,
      post,
      status,
      async untilStatus(orderId, cond, what) {
        let last: FulfillmentStatus | undefined;
        await until(async () => cond((last = await status(orderId))), what);
        return last!;
      },
      async webhook(from, type, data, options = {}) {
        const body = JSON.stringify({ type, timestamp: new Date(clock.now()).toISOString(), data });
        const headers = standardWebhooks.signedHeaders({
          id: options.id ?? `msg_${randomUUID().replace(/-/g, '')}`,
          timestamp: Math.floor(clock.now() / 1000),
          body,
          secret: options.secret ?? secrets[from],
        });
        const res = await fetch(`${ingress.url}/webhooks/fulfillment-${from}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body,
        });
        return { status: res.status, json: await res.json() };
      },
    };
  };
}
