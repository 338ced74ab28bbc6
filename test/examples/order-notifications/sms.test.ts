/**
 * Seed 000, exercise 1 (Twilio SMS notifications), one test per Success Criteria box: the SMS
 * goes out after the order is confirmed and after the email; it is journaled (a crash and
 * restart does not send it again); mock mode works (ids `sms_mock_<unix seconds>`, the seed's
 * env names); the order succeeds when the SMS fails.
 */
import { describe, expect, it } from 'vitest';
import {
  allMocked,
  orderConnectors,
  type OrderRecord,
} from '../../../examples/order-notifications/index.js';
import { slackMock, mockModeOn, type ConnectorMock } from '../../../src/integrations/mocks.js';
import { settle } from '../../../src/testing/index.js';
import { gate } from '../../helpers.js';
import { ended, indexOf, order, placeOrder, useSystem } from './support.js';

const start = useSystem();

describe('NotifiedOrder: SMS (seed 000, exercise 1)', () => {
  it('sends the SMS after the order is confirmed, and after the email', async () => {
    const s = await start();
    const run = await placeOrder(s, order('sms-1'));
    expect(run.value?.status).toBe('confirmed');

    const sms = s.app.connectors.mocks.sms.requests;
    expect(sms).toHaveLength(1);
    const sent = Object.fromEntries(new URLSearchParams(String(sms[0]!.body)));
    expect(sent).toMatchObject({ To: '+15558675310', From: '+15005550006' });
    expect(sent.Body).toContain('sms-1');

    // In the journal: the shipment (the order is confirmed), then the email, then the SMS.
    const journal = await s.engine.getJournal(run.id);
    const shipped = indexOf(journal, 'OrderShipments/sms-1/create');
    const email = indexOf(journal, 'OrderEmail.send_mail');
    const text = indexOf(journal, 'OrderSMS.send_sms');
    expect(shipped).toBeGreaterThanOrEqual(0);
    expect(email).toBeGreaterThan(shipped);
    expect(text).toBeGreaterThan(email);
    expect(s.app.connectors.mocks.email.requests).toHaveLength(1);
  });

  it('is journaled: a crash after the SMS and a restart do not send it again', async () => {
    // The Slack confirmation (the step after the SMS) hangs until the test lets it go.
    const held = gate();
    const base = slackMock();
    const holding = Object.assign(async (req: Parameters<ConnectorMock>[0]) => {
      await held.promise;
      return base(req);
    }, base) as unknown as ConnectorMock;
    const s = await start({ mocks: { slackConfirmations: holding } });
    const first = s.app.connectors.mocks.sms;
    const { invocationId } = await s.engine.send({
      service: 'NotifiedOrder',
      handler: 'run',
      key: 'sms-2',
      input: order('sms-2'),
    });
    // The clock moves a second at a time: the Slack connectors' rate limiter waits on it.
    const status = async () =>
      (await s.engine.client(s.app.NotifiedOrder, 'sms-2').status()) as OrderRecord;
    for (let i = 0; (await status()).notifications?.sms === undefined; i++) {
      if (i > 100) throw new Error('the SMS was never sent');
      await settle(5);
      await s.clock.advance('1s');
    }
    const journal = await s.engine.getJournal(invocationId);
    expect(indexOf(journal, 'OrderSMS.send_sms')).toBeGreaterThan(0);
    const sid = ((await status()).notifications.sms as { MessageSID: string }).MessageSID;
    expect(first.requests).toHaveLength(1);

    await s.crashAndRestart({}); // a new process: new connectors, new (empty) mocks
    held.open();
    const after = await ended(s, invocationId);
    expect(after.value?.status).toBe('confirmed');
    expect(s.app.connectors.mocks.sms.requests).toHaveLength(0);
    expect(first.requests).toHaveLength(1);
    expect(after.value?.notifications.sms).toEqual({ MessageSID: sid, Status: 'queued' });
    // The step after the SMS did run again, in the new process.
    expect(s.app.connectors.mocks.slackConfirmations.requests).toHaveLength(1);
  });

  it('mock mode: the seed’s sms_mock_<unix seconds> ids, no keys needed', async () => {
    const s = await start();
    const run = await placeOrder(s, order('sms-3'));
    const sms = run.value?.notifications.sms as { MessageSID: string; Status: string };
    expect(sms.MessageSID).toMatch(/^sms_mock_\d+$/);
    const seconds = Number(sms.MessageSID.slice('sms_mock_'.length));
    // The engine's clock (fake here, the system clock in the app) at the time of sending.
    expect(seconds).toBeGreaterThanOrEqual(Math.floor(Date.parse('2026-01-01') / 1000));
    expect(seconds).toBeLessThanOrEqual(Math.floor(s.clock.now() / 1000));
    expect(sms.Status).toBe('queued');
  });

  it('mock mode: MOCK_MODE=true (or KEEL_MOCK=1) mocks even with keys; keys alone call Twilio', () => {
    const keys = { TWILIO_ACCOUNT_SID: 'AC0123', TWILIO_API_KEY: 'secret' };
    const on = (e: Record<string, string>) => mockModeOn(orderConnectors({ env: e }).sms, e);
    expect(on({})).toBe(true);
    expect(on(keys)).toBe(false);
    expect(on({ ...keys, MOCK_MODE: 'true' })).toBe(true);
    expect(on({ ...keys, KEEL_MOCK: '1' })).toBe(true);
    // Twilio's own names work as well as the seed's TWILIO_API_KEY.
    expect(on({ TWILIO_ACCOUNT_SID: 'AC0123', TWILIO_AUTH_TOKEN: 't' })).toBe(false);
    expect(allMocked({ MOCK_MODE: 'false' })).toBe(false);
  });

  it('the order succeeds when the SMS fails; the failure is logged', async () => {
    const s = await start();
    // +15005550001 is Twilio's invalid-number test value: 400, code 21211.
    const run = await placeOrder(s, order('sms-4', { customerPhone: '+15005550001' }));
    expect(run.value?.status).toBe('confirmed');
    expect(run.value?.notifications.sms).toMatchObject({ error: expect.stringContaining('21211') });
    expect(s.app.connectors.mocks.sms.requests).toHaveLength(1);
    expect(s.logs.some((l) => l.startsWith('warn SMS to +15005550001 not sent'))).toBe(true);
    // What came after the SMS still happened.
    expect(s.app.connectors.mocks.slackConfirmations.requests).toHaveLength(1);
  });
});
