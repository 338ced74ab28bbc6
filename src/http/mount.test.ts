import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../admin/index.js';
import { service } from '../core/definitions.js';
import { Engine } from '../engine/engine.js';
import { serve, type IngressServer } from '../ingress/index.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { tempDir } from '../../test/helpers.js';
import { dispatchMount, type Mount } from './mount.js';

// Found by the HTTP fuzzer (test/fuzz): a first path segment named like a property of
// Object.prototype (`toString`, `constructor`, `hasOwnProperty`) was looked up on the mounts
// object, found there, and called as a mount: a 500, or no answer at all (the request hung).

const PROTOTYPE_NAMES = ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__'];

describe('dispatchMount', () => {
  it('does not treat Object.prototype properties as mounts', async () => {
    const mount: Mount = async () => undefined;
    for (const name of PROTOTYPE_NAMES) {
      const handled = await dispatchMount(
        { webhooks: mount },
        {} as IncomingMessage,
        {} as ServerResponse,
        [name, 'x'],
        '',
        false,
      );
      expect(handled, name).toBe(false);
    }
  });
});

describe('servers with mounts', () => {
  const Greeter = service({ name: 'Greeter', handlers: { greet: async () => 'hi' } });
  const mount: Mount = async ({ res }) => {
    res.writeHead(200, { 'content-length': 2 });
    res.end('ok');
  };
  const { dir, cleanup } = tempDir();
  let engine: Engine;
  let ingress: IngressServer;
  let admin: AdminServer;
  beforeAll(async () => {
    engine = new Engine({
      services: [Greeter],
      store: openSqliteStore({ path: `${dir}/keel.db` }),
      logger: () => undefined,
    });
    await engine.start();
    ingress = await serve(engine, { port: 0, mounts: { webhooks: mount } });
    admin = await serveAdmin(engine, { port: 0, mounts: { webhooks: mount } });
  });
  afterAll(async () => {
    await Promise.all([ingress.close(), admin.close()]);
    await engine.stop();
    cleanup();
  });

  it('answer 404 to a path whose first segment is an Object.prototype property', async () => {
    for (const base of [ingress.url, admin.url]) {
      for (const name of PROTOTYPE_NAMES) {
        for (const method of ['GET', 'POST']) {
          const res = await fetch(`${base}/${name}/x`, {
            method,
            signal: AbortSignal.timeout(5_000),
          });
          expect(res.status, `${method} ${base}/${name}/x`).toBe(404);
          expect(((await res.json()) as { code: string }).code).toBe('not_found');
        }
      }
    }
  });

  it('still dispatch to a real mount', async () => {
    const res = await fetch(`${ingress.url}/webhooks/x`, { method: 'POST' });
    expect(await res.text()).toBe('ok');
  });
});
