/**
 * The extension interface: the one way integrations, webhooks and what comes next reach the
 * engine. An extension brings services, is installed once when the engine starts (before
 * recovery runs anything), provides its runtime to handlers through a typed key, records
 * writes atomically with a step, serves routes under its name on the ingress and the admin
 * API, and is closed when the engine stops.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  attemptOf,
  contextKey,
  Engine,
  runWithWrites,
  serve,
  serveAdmin,
  service,
  type EngineExtension,
  type ExtensionHost,
} from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { tempDir } from './helpers.js';

interface Audit {
  prefix: string;
  host: ExtensionHost;
}

const AUDIT = contextKey<Audit>('test.audit');

/** A user service that reaches the extension's runtime from its context. */
const Orders = service({
  name: 'Orders',
  handlers: {
    place: async (ctx, id: string) => {
      const audit = AUDIT.of(ctx);
      if (!audit) throw new Error('no audit runtime');
      // A step whose key-value write commits with its journal entry.
      await runWithWrites(ctx, 'audit', () => ({
        value: null,
        writes: [{ op: 'kv.put', scope: 'test.audit', key: id, value: `${audit.prefix}${id}` }],
      }));
      return { attempt: attemptOf(ctx), recorded: `${audit.prefix}${id}` };
    },
  },
});

/** The extension's own service, not routable from the ingress. */
const AuditService = service({
  name: 'test.audit',
  internal: true,
  handlers: { count: async () => 42 },
});

function auditExtension(events: string[], fail = false): EngineExtension {
  return {
    name: 'audit',
    services: [AuditService],
    install(host) {
      events.push('install');
      if (fail) throw new Error('install failed on purpose');
      host.provide(AUDIT, { prefix: 'audited:', host });
    },
    mounts: {
      ingress: async ({ res, segments }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ where: 'ingress', segments }));
      },
      admin: async ({ res }) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ where: 'admin' }));
      },
    },
    started() {
      events.push('started');
    },
    async close() {
      events.push('close');
    },
  };
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function newEngine(extensions: EngineExtension[]): Engine {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  return new Engine({
    services: [Orders],
    store: openSqliteStore({ path: join(dir, 'keel.db') }),
    logger: () => undefined,
    extensions,
  });
}

describe('engine extensions', () => {
  it('are installed once at start, reach handlers by key, serve routes under their name, and close with the engine', async () => {
    const events: string[] = [];
    const engine = newEngine([auditExtension(events)]);
    expect(events).toEqual([]); // nothing runs before start
    await engine.start();
    await engine.start(); // a second start installs nothing again
    expect(events).toEqual(['install', 'started']);

    const out = await engine.client(Orders).place('o-1');
    expect(out).toEqual({ attempt: 0, recorded: 'audited:o-1' });
    expect((await engine.store.getKv('test.audit', 'o-1'))?.value).toBe('audited:o-1');

    // Its service joined the engine's: callable from the engine, not routable from the ingress.
    expect(await engine.invoke({ service: 'test.audit', handler: 'count' })).toBe(42);
    const ingress = await serve(engine, { port: 0 });
    const admin = await serveAdmin(engine, { port: 0 });
    try {
      const viaIngress = await fetch(`${ingress.url}/audit/a/b`);
      expect(await viaIngress.json()).toEqual({ where: 'ingress', segments: ['a', 'b'] });
      expect(await (await fetch(`${admin.url}/audit`)).json()).toEqual({ where: 'admin' });
      expect((await fetch(`${ingress.url}/test.audit/count`, { method: 'POST' })).status).toBe(404);
    } finally {
      await Promise.all([ingress.close(), admin.close()]);
    }
    await engine.stop();
    expect(events).toEqual(['install', 'started', 'close']);
  });

  it('an install that fails fails the start, and nothing is left running', async () => {
    const events: string[] = [];
    const engine = newEngine([auditExtension(events, true)]);
    await expect(engine.start()).rejects.toThrow('install failed on purpose');
    await engine.stop();
    // It never installed, so it is not closed either.
    expect(events).toEqual(['install']);
  });

  it('refuses names that cannot be a URL prefix, duplicates, and extensions without install', () => {
    const ok = auditExtension([]);
    expect(() => newEngine([{ ...ok, name: 'Bad Name' }])).toThrow(/lowercase letters/);
    expect(() => newEngine([ok, { ...ok }])).toThrow(/two extensions are named "audit"/);
    expect(() =>
      newEngine([{ name: 'x', install: undefined } as unknown as EngineExtension]),
    ).toThrow(/no install\(host\) function/);
  });
});
