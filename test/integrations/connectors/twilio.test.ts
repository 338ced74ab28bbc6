import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TWILIO_MAGIC_TO, twilioMock } from '../../../src/integrations/mocks.js';
import { TWILIO_PLACEHOLDER_ACCOUNT } from '../../../src/integrations/connectors/twilio.js';
import { twilio } from '../../../src/integrations/index.js';
import { fakeTwilio, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const SID = 'AC0123456789abcdef0123456789abcdef';
const TOKEN = 'twilio-auth-token';
const ENV = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN };

let fake: Fake;
beforeAll(async () => {
  fake = await fakeTwilio(SID, TOKEN);
});
afterAll(() => fake.api.close());

function client(name: string) {
  return clientOf(
    runtime({ env: ENV }),
    twilio({ name, baseUrl: fake.api.url, retry: FAST_RETRY, env: ENV }),
  );
}

describe('twilio connector on the wire', () => {
  it('POSTs a form to /2010-04-01/Accounts/{sid}/Messages.json with Basic sid:token', async () => {
    const message = await client('TwilioWire1').send_sms({
      To: '+15558675310',
      From: '+15005550006',
      Body: 'Order 42 confirmed',
    });
    const r = fake.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(r.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
    );
    expect(r.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(r.text).toBe('To=%2B15558675310&From=%2B15005550006&Body=Order+42+confirmed');
    expect(r.headers['idempotency-key']).toBeUndefined();
    expect(message).toMatchObject({
      account_sid: SID,
      to: '+15558675310',
      from: '+15005550006',
      body: 'Order 42 confirmed',
      status: 'queued',
      num_segments: '1',
      direction: 'outbound-api',
    });
    expect(message.sid).toMatch(/^SM[0-9a-f]{32}$/);

    const fetched = await client('TwilioWire1b').fetch_message({ Sid: message.sid });
    expect(fake.api.last().target).toBe(`/2010-04-01/Accounts/${SID}/Messages/${message.sid}.json`);
    expect(fetched.status).toBe('delivered');
  });

  it('does not retry an ambiguous 500 (Twilio may have queued it) but retries 503', async () => {
    let before = fake.api.requests.length;
    fake.mock.failNext(1, 500);
    const err = await callError(
      client('TwilioWire2').send_sms({ To: '+15558675310', From: '+15005550006', Body: 'x' }),
    );
    expect(err.failure.status).toBe(500);
    expect(fake.api.requests.length - before).toBe(1);

    before = fake.api.requests.length;
    fake.mock.failNext(1, 503);
    await client('TwilioWire3').send_sms({ To: '+15558675310', From: '+15005550006', Body: 'x' });
    expect(fake.api.requests.length - before).toBe(2);
  });

  it('a magic test number fails with its Twilio code and is not retried', async () => {
    const err = await callError(
      client('TwilioWire4').send_sms({ To: '+15005550004', From: '+15005550006', Body: 'hi' }),
    );
    expect(err.failure).toMatchObject({ status: 400, body: { code: 21610 } });
  });

  it('reads the account SID when created; without one, mock mode still works', async () => {
    expect(twilio({ env: ENV }).operations.send_sms).toMatchObject({
      path: `/2010-04-01/Accounts/${SID}/Messages.json`,
    });
    const anonymous = twilio({ name: 'TwilioMock1', env: {} });
    expect(anonymous.operations.send_sms).toMatchObject({
      path: `/2010-04-01/Accounts/${TWILIO_PLACEHOLDER_ACCOUNT}/Messages.json`,
    });
    const sms = clientOf(runtime({ mock: true, env: {} }), anonymous);
    const m = await sms.send_sms({ To: '+15558675310', From: '+15005550006', Body: 'hi' });
    expect(m.sid).toMatch(/^SM/);
  });
});

describe('twilio mock', () => {
  const send = (body: Record<string, unknown>, mock = twilioMock()) =>
    mock(mockReq('POST', `/2010-04-01/Accounts/${SID}/Messages.json`, { body }));

  it('every magic To number gives its error code', () => {
    for (const [to, e] of Object.entries(TWILIO_MAGIC_TO)) {
      expect(send({ To: to, From: '+15005550006', Body: 'x' }), to).toMatchObject({
        status: 400,
        body: { code: e.code, more_info: `https://www.twilio.com/docs/errors/${e.code}` },
      });
    }
  });

  it('validates required fields and counts segments (GSM-7 and UCS-2)', () => {
    expect(send({ From: '+15005550006', Body: 'x' }).body).toMatchObject({ code: 21604 });
    expect(send({ To: '+15558675310', Body: 'x' }).body).toMatchObject({ code: 21603 });
    expect(send({ To: '+15558675310', From: '+15005550006' }).body).toMatchObject({ code: 21602 });
    const long = send({ To: '+15558675310', From: '+15005550006', Body: 'a'.repeat(161) });
    expect(long.body).toMatchObject({ num_segments: '2' });
    const emoji = send({ To: '+15558675310', From: '+15005550006', Body: '👋'.repeat(71) });
    expect(emoji.body).toMatchObject({ num_segments: '2' });
  });

  it('is deterministic: the same request gives the same sid and dates', () => {
    const body = { To: '+15558675310', From: '+15005550006', Body: 'same' };
    expect(send(body).body).toEqual(send(body).body);
    expect((send(body).body as { date_created: string }).date_created).toMatch(
      /^\w{3}, \d{2} \w{3} \d{4} [\d:]{8} \+0000$/,
    );
  });

  it('an unknown sid is 404, one minted before a restart is found', () => {
    const mock = twilioMock();
    expect(mock(mockReq('GET', `/2010-04-01/Accounts/${SID}/Messages/SMnope.json`)).status).toBe(
      404,
    );
    const sid = (
      send({ To: '+15558675310', From: '+15005550006', Body: 'x' }).body as { sid: string }
    ).sid;
    expect(mock(mockReq('GET', `/2010-04-01/Accounts/${SID}/Messages/${sid}.json`))).toMatchObject({
      status: 200,
      body: { sid, status: 'delivered' },
    });
  });
});
