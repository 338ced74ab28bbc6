import { describe, expect, it } from 'vitest';
import { aggregatorReceivers, definitions } from '../../../examples/webhook-aggregator/index.js';
import { readmeCommands, runCommands } from './support.js';
import { useApp } from './support.js';

/**
 * The README's commands, run as written (bash, openssl, node, curl) against an app with the
 * demo secrets, the ingress URL aside: each signs a sample body by hand and the receivers
 * accept it, refuse the tampered one, and the order ends as the README says.
 */
const start = useApp({ definitions, receivers: aggregatorReceivers({}) });

describe('examples/webhook-aggregator/README.md', () => {
  it('signs by hand for every provider, and the order ends as documented', async () => {
    // The commands sign with the real time: the app's clock starts there.
    const app = await start(Date.now());
    const blocks = readmeCommands('examples/webhook-aggregator/README.md');
    expect(blocks).toHaveLength(4);
    const out = await runCommands(blocks.join('\n'), app.ingress.url);
    expect(out.match(/"status":"accepted"/g)).toHaveLength(5);
    expect(out.match(/"status":"duplicate"/g)).toHaveLength(1);
    expect(out).toContain('"code":"invalid_signature"');
    const res = await app.post('/AggregatedOrder/order-100/status', {});
    expect(res.json).toMatchObject({
      payment: { status: 'succeeded', eventId: 'evt_demo_1' },
      shipping: { status: 'delivered' },
      email: { status: 'opened' },
    });
    expect(
      res.json.history.map((h: { status: string; applied: boolean }) => [h.status, h.applied]),
    ).toEqual([
      ['succeeded', true],
      ['delivered', true],
      ['in_transit', false],
      ['delivered', true],
      ['opened', true],
    ]);
  });
});
