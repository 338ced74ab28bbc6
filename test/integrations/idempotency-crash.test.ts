import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProviderServer } from '../fakes/provider-server.js';
import { killHard, spawnApp, tempDir } from '../helpers.js';

/**
 * kill -9 after a charge request left and before its result was journaled: after the restart the
 * step runs again and sends the same Idempotency-Key, so the provider makes one charge.
 */
const tmp = tempDir('keel-idem-crash-');
const children: ChildProcess[] = [];
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await api.close();
  tmp.cleanup();
});

const start = (): Promise<{ child: ChildProcess; url: string }> =>
  spawnApp(
    join(import.meta.dirname, 'fixtures/pay-app.ts'),
    { KEEL_DB: join(tmp.dir, 'keel.db'), PROVIDER_URL: api.url },
    children,
  );

describe('idempotency across a crash', () => {
  it('retries a call interrupted by kill -9 with the same key: one logical charge', async () => {
    const first = await start();
    // The provider makes the charge but its answer never comes back.
    api.script({ pass: true, hang: true });
    const sent = await fetch(`${first.url}/Checkout/pay/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '1200',
    });
    expect(sent.status).toBe(202);
    const { invocationId } = (await sent.json()) as { invocationId: string };
    await api.waitForRequests(1, '/charges');
    await killHard(first.child);
    expect(api.logicalCharges).toBe(1);

    const second = await start();
    const res = await fetch(`${second.url}/invocations/${invocationId}/attach`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: 'ch_1', amount: 1200 });
    const keys = api.idempotencyKeys('/charges');
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[0]).toBe(`${invocationId}.0`);
    expect(api.logicalCharges).toBe(1);
    second.child.kill('SIGTERM');
  }, 60_000);
});
