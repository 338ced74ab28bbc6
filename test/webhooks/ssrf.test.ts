import { afterEach, describe, expect, it } from 'vitest';
import { service } from '../../src/index.js';
import { publish } from '../../src/webhooks/index.js';
import { until } from '../helpers.js';
import { hooked, receiver, type Hooked, type Receiver } from './helpers.js';

/**
 * SSRF: deliveries to loopback, private, link-local and metadata addresses, literal or behind a
 * name, are refused after resolution, on every attempt, unless allow-listed. A live receiver on
 * 127.0.0.1 proves a refused delivery never reached it.
 */
let h: Hooked | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await h?.close();
  await r?.close();
  h = undefined;
  r = undefined;
});

const Events = service({
  name: 'Events',
  handlers: { emit: async (ctx, type: string) => publish(ctx, type, {}) },
});

/** DNS as the tests want it: each `*.test` name resolves to the address in its first label. */
const dns: Record<string, string> = {
  'loopback.test': '127.0.0.1',
  'private.test': '10.0.0.1',
  'metadata.test': '169.254.169.254',
  'public.test': '93.184.216.34',
};
let rebind = '93.184.216.34';
const resolve = async (host: string) => [
  { address: host === 'rebind.test' ? rebind : (dns[host] ?? '203.0.113.1'), family: 4 },
];

describe('outbound SSRF protection', () => {
  it('refuses endpoints at non-public addresses, literal or by name, when creating them', async () => {
    h = await hooked([Events], { allow: [], resolve });
    for (const url of [
      'http://127.0.0.1:8080/x',
      'http://10.0.0.1/x',
      'http://169.254.169.254/latest/meta-data',
      'http://[::ffff:127.0.0.1]/x',
      'http://localhost/x',
      'http://loopback.test/x',
      'http://private.test/x',
      'http://metadata.test/x',
    ]) {
      const res = await h.api('POST', '/webhooks', { url });
      expect(res.status, url).toBe(400);
      expect(res.json.code, url).toBe('blocked_address');
    }
    expect((await h.api('POST', '/webhooks', { url: 'http://public.test/x' })).status).toBe(201);
  });

  it('refuses each delivery attempt to a blocked address, after DNS resolution, with no request sent', async () => {
    h = await hooked([Events], { allow: [], resolve, retry: { schedule: ['1m'] } });
    r = await receiver();
    const port = new URL(r.url).port;
    // Created while their names resolved to public addresses (or without a check), as an
    // attacker would: the attempt-time check is what must refuse them.
    const urls = [
      `http://127.0.0.1:${port}/hooks`,
      'http://10.0.0.1/hooks',
      'http://169.254.169.254/latest/meta-data',
      `http://loopback.test:${port}/hooks`,
      'http://private.test/hooks',
      'http://metadata.test/hooks',
      `http://rebind.test:${port}/hooks`,
    ];
    const ids: string[] = [];
    for (const url of urls) {
      const ep = await h.hooks.createEndpoint({ url, events: ['probe'] });
      ids.push(ep.id);
    }
    rebind = '127.0.0.1'; // DNS rebinding after creation
    await h.engine.client(Events).emit('probe');
    for (const [i, id] of ids.entries()) {
      await until(
        async () =>
          (await h!.api('GET', `/webhooks/${id}/deliveries`)).json.deliveries.length === 1,
        urls[i]!,
      );
      const d = (await h.api('GET', `/webhooks/${id}/deliveries`)).json.deliveries[0];
      expect(d.attempts[0].error_code, urls[i]).toBe('blocked_address');
      expect(d.attempts[0].error, urls[i]).toMatch(/not a public address/);
    }
    // Every attempt checks again: the retry is refused too.
    await h.clock.advance('2m');
    await until(
      async () =>
        (await h!.api('GET', `/webhooks/${ids[6]}/deliveries`)).json.deliveries[0].attempts
          .length === 2,
      'attempt 2',
    );
    expect(r.requests).toHaveLength(0);
  });

  it('delivers to an allow-listed address, by literal or by name', async () => {
    h = await hooked([Events], { allow: ['127.0.0.1'], resolve });
    r = await receiver();
    const port = new URL(r.url).port;
    await h.hooks.createEndpoint({ url: r.url, events: ['probe'] });
    await h.hooks.createEndpoint({
      url: `http://loopback.test:${port}/by-name`,
      events: ['probe'],
    });
    await h.engine.client(Events).emit('probe');
    await until(() => r!.requests.length === 2, 'both deliveries');
    expect(r.requests.map((q) => q.path).sort()).toEqual(['/by-name', '/hooks']);
  });
});
