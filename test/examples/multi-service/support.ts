/**
 * What the multi-service tests share: the example's definitions and integrations on an engine
 * with a fake clock and a fresh SQLite file, its ingress on a real port, and the integrations
 * pointed at local fake providers over real HTTP (`mock: false`), or at the example's mocks.
 */
import { afterEach } from 'vitest';
import { definitions, integrations } from '../../../examples/multi-service/index.js';
import { createIntegrations } from '../../../src/integrations/index.js';
import { serve, type IngressServer } from '../../../src/ingress/index.js';
import { harness, type Harness } from '../../helpers.js';
import { startFakes } from './fakes.js';

export interface Rig {
  h: Harness;
  ingress: IngressServer;
  fakes: Awaited<ReturnType<typeof startFakes>>;
  /** POST to the ingress; the fake clock moves 100 ms at a time until the answer is there (retries wait on it). */
  post<T = any>(path: string, body?: unknown): Promise<{ status: number; json: T }>;
}

export function useRig(): (options?: { mocks?: boolean }) => Promise<Rig> {
  const open: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of open.splice(0)) await close();
  });
  return async (options = {}) => {
    const mocks = options.mocks ?? false;
    const fakes = await startFakes();
    const h = await harness({
      services: definitions,
      extensions: [
        createIntegrations({
          integrations,
          mock: mocks,
          env: mocks ? {} : fakes.env,
          log: () => undefined,
        }),
      ],
    });
    const ingress = await serve(h.engine, { port: 0 });
    open.push(async () => {
      await ingress.close();
      await h.close();
      await fakes.close();
    });
    return {
      h,
      ingress,
      fakes,
      async post(path, body) {
        let done = false;
        const answer = fetch(`${ingress.url}${path}`, {
          method: 'POST',
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        }).then(async (res) => {
          const text = await res.text();
          return { status: res.status, json: text ? JSON.parse(text) : undefined };
        });
        void answer.finally(() => (done = true)).catch(() => undefined);
        while (!done) await h.clock.advance('100ms');
        return answer;
      },
    };
  };
}
