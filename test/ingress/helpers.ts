import { join } from 'node:path';
import {
  Engine,
  serve,
  type Definition,
  type IngressOptions,
  type IngressServer,
} from '../../src/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

/** An engine on a fresh SQLite file behind a real ingress on a free port. */
export interface IngressHarness {
  engine: Engine;
  ingress: IngressServer;
  base: string;
  close(): Promise<void>;
}

export async function ingressHarness(
  services: Definition[],
  options: IngressOptions = {},
): Promise<IngressHarness> {
  const { dir, cleanup } = tempDir('keel-ingress-');
  const engine = new Engine({
    services,
    store: openSqliteStore({ path: join(dir, 'keel.db'), durability: 'os' }),
    logger: () => undefined,
  });
  await engine.start();
  const ingress = await serve(engine, { port: 0, ...options });
  return {
    engine,
    ingress,
    base: ingress.url,
    async close() {
      await ingress.close();
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

/** Sends a JSON request with fetch and parses the answer. */
export async function request(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : JSON.parse(text),
    headers: res.headers,
  };
}
