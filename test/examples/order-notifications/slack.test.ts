/**
 * Seed 000, exercise 2 (Slack notifications), one test per Success Criteria box: every event
 * (new order, payment failure, confirmation) is sent, each to its own channel; messages carry
 * the order's details; the calls are journaled; failures are logged and do not block the order.
 */
import { describe, expect, it } from 'vitest';
import { indexOf, order, placeOrder, useSystem } from './support.js';

const start = useSystem();

type Posted = {
  channel: string;
  text: string;
  attachments: { fields: { title: string; value: string }[] }[];
};
const posted = (m: { requests: readonly { body: unknown }[] }) =>
  m.requests.map((r) => r.body as Posted);

describe('NotifiedOrder: Slack (seed 000, exercise 2)', () => {
  it('sends the new order and the confirmation, each to its channel, with the details', async () => {
    const s = await start();
    const run = await placeOrder(s, order('slack-1'));
    expect(run.value?.status).toBe('confirmed');
    const m = s.app.connectors.mocks;
    const [created] = posted(m.slackOrders);
    expect(posted(m.slackOrders)).toHaveLength(1);
    expect(created!.channel).toBe('#orders');
    expect(created!.text).toContain('$69.98');
    expect(created!.attachments[0]!.fields).toEqual(
      expect.arrayContaining([
        { title: 'Order ID', value: 'slack-1', short: true },
        { title: 'Customer', value: 'cust-123', short: true },
        { title: 'Total', value: '$69.98', short: true },
      ]),
    );
    const [confirmed] = posted(m.slackConfirmations);
    expect(posted(m.slackConfirmations)).toHaveLength(1);
    expect(confirmed!.channel).toBe('#order-confirmations');
    expect(confirmed!.attachments[0]!.fields).toEqual(
      expect.arrayContaining([{ title: 'Shipment', value: 'shp_slack-1', short: true }]),
    );
    expect(m.slackPayments.requests).toHaveLength(0);
    // Mock mode logs each message.
    expect(s.logs.some((l) => l.startsWith('info [slack mock] #orders: New order slack-1'))).toBe(
      true,
    );
  });

  it('sends the payment failure to #payments, and the order fails with nothing reserved', async () => {
    const s = await start();
    const run = await placeOrder(s, order('slack-2', { paymentSource: 'tok_chargeDeclined' }));
    expect(run.error?.code).toBe('payment_failed');
    const [failed] = posted(s.app.connectors.mocks.slackPayments);
    expect(posted(s.app.connectors.mocks.slackPayments)).toHaveLength(1);
    expect(failed!.channel).toBe('#payments');
    expect(failed!.text).toContain('slack-2');
    const reason = failed!.attachments[0]!.fields.find((f) => f.title === 'Reason');
    expect(reason?.value).toContain('declined');
    expect(s.app.connectors.mocks.slackConfirmations.requests).toHaveLength(0);
    const status = await s.engine.client(s.app.NotifiedOrder, 'slack-2').status();
    expect(status).toMatchObject({ status: 'failed', failure: { code: 'payment_failed' } });
    expect('reservation' in status).toBe(false);
  });

  it('journals every Slack call', async () => {
    const s = await start();
    const run = await placeOrder(s, order('slack-3'));
    const journal = await s.engine.getJournal(run.id);
    for (const name of ['OrderSlackOrders.post_message', 'OrderSlackConfirmations.post_message']) {
      const i = indexOf(journal, name);
      expect(i, name).toBeGreaterThanOrEqual(0);
      expect(journal[i]!).toMatchObject({ kind: 'run', done: true });
    }
  });

  it('logs failures and never blocks the order', async () => {
    // '#archived' makes Slack answer 410 channel_is_archived; the confirmation gets a 400.
    const s = await start({ channels: { orders: '#archived' } });
    s.app.connectors.mocks.slackConfirmations.failNext(1, 400);
    const run = await placeOrder(s, order('slack-4'));
    expect(run.value?.status).toBe('confirmed');
    expect(run.value?.notifications.slack).toEqual([
      expect.objectContaining({ Channel: '#archived', sent: false }),
      expect.objectContaining({ Channel: '#order-confirmations', sent: false }),
    ]);
    expect(run.value?.notifications.sms).toHaveProperty('MessageSID');
    expect(s.logs.filter((l) => /^warn Slack message to .* not sent/.test(l))).toHaveLength(2);
  });
});
