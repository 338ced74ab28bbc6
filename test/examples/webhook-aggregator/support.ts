/**
 * What the seed-000 webhook tests (exercises 4 and 5) share: an engine with the webhooks and
 * integrations extensions (connectors in mock mode) on a fresh SQLite file and a fake clock,
 * served over real HTTP on 127.0.0.1, and ways to call it.
 */
import { execFile } from 'node:child_process';
import { createHmac, createPrivateKey, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { Engine, type Definition, type Duration } from '../../../src/index.js';
import { serve, type IngressServer } from '../../../src/ingress/index.js';
import { createIntegrations, type Integration } from '../../../src/integrations/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { FakeClock } from '../../../src/testing/index.js';
import { createWebhooks, type ReceiverOptions } from '../../../src/webhooks/index.js';
import { tempDir } from '../../helpers.js';

export interface App {
  engine: Engine;
  clock: FakeClock;
  ingress: IngressServer;
  logs: string[];
  /** Stops the engine and starts a new one on the same database and clock (a restart). */
  restart(): Promise<void>;
  /** POSTs to the ingress; returns the status and the parsed body (or the text). */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  json: any;
}

/** A fresh app for one test, closed after it. Call inside a test. */
export function useApp(setup: {
  definitions: Definition[];
  receivers: Record<string, ReceiverOptions>;
  integrations?: Integration[];
}): (clockStart?: number) => Promise<App> {
  let app: App | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  return async (clockStart) => {
    app = await startApp(setup, clockStart);
    return app;
  };
}

export async function startApp(
  setup: {
    definitions: Definition[];
    receivers: Record<string, ReceiverOptions>;
    integrations?: Integration[];
  },
  clockStart = Date.parse('2026-03-01T12:00:00Z'),
): Promise<App> {
  const { dir, cleanup } = tempDir('keel-seed000-');
  const clock = new FakeClock(clockStart);
  const logs: string[] = [];
  const boot = async () => {
    const integrations = createIntegrations({
      integrations: setup.integrations ?? [],
      mock: true,
      env: {},
      log: () => undefined,
    });
    const engine = new Engine({
      services: setup.definitions,
      store: openSqliteStore({ path: join(dir, 'keel.db') }),
      clock,
      suspendAfter: '1s',
      logger: (level, message) => logs.push(`${level} ${message}`),
      extensions: [createWebhooks({ receivers: setup.receivers }), integrations],
    });
    await engine.start();
    const ingress = await serve(engine, { port: 0 });
    return { engine, ingress, integrations };
  };
  let running = await boot();
  const stop = async () => {
    await running.ingress.close().catch(() => undefined);
    await running.engine.stop().catch(() => undefined);
    await running.integrations.runtime.close();
  };
  return {
    get engine() {
      return running.engine;
    },
    get ingress() {
      return running.ingress;
    },
    clock,
    logs,
    async restart() {
      await stop();
      running = await boot();
    },
    async post(path, body, headers = {}) {
      const res = await fetch(`${running.ingress.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown = text;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON (TwiML, a plain error): keep the text.
      }
      return { status: res.status, json };
    },
    async close() {
      await stop();
      cleanup();
    },
  };
}

/** A signed request: the path to post to, and its headers. */
export interface Signed {
  path: string;
  headers: Record<string, string>;
}

const hmacHex = (key: string, text: string): string =>
  createHmac('sha256', key).update(text).digest('hex');

/** Signatures written from each provider's documentation with node:crypto. */
export const sign$ = {
  stripe: (body: string, secret: string, ts: number): Signed => ({
    path: '/webhooks/stripe',
    headers: { 'stripe-signature': `t=${ts},v1=${hmacHex(secret, `${ts}.${body}`)}` },
  }),
  shippo: (body: string, token: string, secret: string, ts: number): Signed => ({
    path: `/webhooks/shippo?token=${encodeURIComponent(token)}`,
    headers: { 'shippo-auth-signature': `t=${ts},v1=${hmacHex(secret, `${ts}.${body}`)}` },
  }),
  sendgrid: (body: string, privateKeyB64: string, ts: number): Signed => {
    const key = createPrivateKey({
      key: Buffer.from(privateKeyB64, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    return {
      path: '/webhooks/sendgrid',
      headers: {
        'x-twilio-email-event-webhook-timestamp': String(ts),
        'x-twilio-email-event-webhook-signature': sign('sha256', Buffer.from(`${ts}${body}`), {
          key,
          dsaEncoding: 'der',
        }).toString('base64'),
      },
    };
  },
  github: (body: string, secret: string, delivery: string, event: string): Signed => ({
    path: '/webhooks/github',
    headers: {
      'x-hub-signature-256': `sha256=${hmacHex(secret, body)}`,
      'x-github-delivery': delivery,
      'x-github-event': event,
    },
  }),
};

/**
 * Awaits `work` while moving the fake clock a second at a time: a connector's shared rate
 * limiter paces calls on the runtime's clock (a fresh limiter's bucket starts empty, so even
 * the first GitHub call waits about 720 ms), which a fake clock only lets pass when advanced.
 */
export async function whileAdvancing<T>(
  app: App,
  work: Promise<T>,
  step: Duration = '1s',
): Promise<T> {
  let done = false;
  const result = work.finally(() => {
    done = true;
  });
  for (let i = 0; i < 120 && !done; i++) {
    await new Promise((r) => setTimeout(r, 25));
    if (!done) await app.clock.advance(step);
  }
  return result;
}

/** The ```sh blocks of a README (path from the repository root). */
export function readmeCommands(path: string): string[] {
  const text = readFileSync(join(REPO, path), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Runs shell commands with bash (-eu), `http://localhost:9080` replaced by `ingress`; returns
 * what they printed. Asynchronous, so the app in this process answers meanwhile.
 */
export function runCommands(script: string, ingress: string): Promise<string> {
  const body = `set -eu\n${script.replaceAll('http://localhost:9080', ingress)}`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', body], { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}
