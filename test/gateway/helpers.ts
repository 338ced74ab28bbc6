import { join } from 'node:path';
import { Engine, serve, serveAdmin, type Definition } from '../../src/index.js';
import type { AdminServer, IngressServer } from '../../src/index.js';
import { createGateway, type GatewayOptions } from '../../src/gateway/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from '../helpers.js';

/** An engine with a gateway, its ingress and admin API on free ports. */
export interface GatewayHarness {
  engine: Engine;
  ingress: IngressServer;
  admin: AdminServer;
  base: string;
  adminBase: string;
  dbPath: string;
  close(): Promise<void>;
}

export async function gatewayHarness(
  services: Definition[],
  options: GatewayOptions,
  store?: Store,
): Promise<GatewayHarness> {
  const { dir, cleanup } = tempDir('keel-gateway-');
  const dbPath = join(dir, 'keel.db');
  const engine = new Engine({
    services,
    store: store ?? openSqliteStore({ path: dbPath, durability: 'os' }),
    extensions: [createGateway({ env: false, ...options })],
    logger: () => undefined,
  });
  await engine.start();
  const ingress = await serve(engine, { port: 0 });
  const admin = await serveAdmin(engine, { port: 0 });
  return {
    engine,
    ingress,
    admin,
    base: ingress.url,
    adminBase: admin.url,
    dbPath,
    async close() {
      await Promise.all([ingress.close(), admin.close()]);
      await engine.stop();
      cleanup();
    },
  };
}

/** An answer with its JSON body parsed (`undefined` when empty). */
export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

export async function call(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; key?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key !== undefined) headers.authorization = `Bearer ${options.key}`;
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const KEY_A = 'key-a-0123456789abcdef';
export const KEY_B = 'key-b-0123456789abcdef';
