/**
 * What the event-sourcing tests share: the example's aggregate on an engine with a fake clock
 * and a fresh SQLite file, the `eventSourcing()` extension, and its ingress on a real port.
 */
import { afterEach } from 'vitest';
import { definitions, extensions } from '../../../examples/event-sourcing/index.js';
import { serve, type IngressServer } from '../../../src/ingress/index.js';
import { harness, type Harness } from '../../helpers.js';

export interface Rig {
  h: Harness;
  ingress: IngressServer;
  /** POST to the ingress: status and parsed body. */
  post<T = any>(path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** Restarts the engine (same database) and its ingress. */
  restart(): Promise<void>;
}

export function useRig(): () => Promise<Rig> {
  const open: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of open.splice(0)) await close();
  });
  return async () => {
    const h = await harness({ services: definitions, extensions: extensions() });
    const rig: Rig = {
      h,
      ingress: await serve(h.engine, { port: 0 }),
      async post(path, body) {
        const res = await fetch(`${rig.ingress.url}${path}`, {
          method: 'POST',
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, json: text ? JSON.parse(text) : undefined };
      },
      async restart() {
        await rig.ingress.close();
        await h.restart();
        rig.ingress = await serve(h.engine, { port: 0 });
      },
    };
    open.push(async () => {
      await rig.ingress.close();
      await h.close();
    });
    return rig;
  };
}
