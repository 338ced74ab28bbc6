import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendgrid, type SendGridMailParams } from '../../../src/integrations/index.js';
import { sendgridMock } from '../../../src/integrations/mocks.js';
import { fakeSendGrid, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const KEY = 'SG.keel-test-key';

let fake: Fake;
beforeAll(async () => {
  fake = await fakeSendGrid(KEY);
});
afterAll(() => fake.api.close());

const MAIL: SendGridMailParams = {
  personalizations: [{ to: [{ email: 'ada@example.com', name: 'Ada' }] }],
  from: { email: 'orders@example.com', name: 'Example Shop' },
  subject: 'Order 42 confirmed',
  content: [{ type: 'text/plain', value: 'Thanks for your order!' }],
};

function client(name: string) {
  return clientOf(
    runtime({ env: { SENDGRID_API_KEY: KEY } }),
    sendgrid({ name, baseUrl: fake.api.url, retry: FAST_RETRY }),
  );
}

describe('sendgrid connector on the wire', () => {
  it('POSTs the message as JSON to /v3/mail/send with the key as a bearer token', async () => {
    const res = await client('SendGridWire1').send_mail.withResponse(MAIL);
    const r = fake.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe('/v3/mail/send');
    expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.text)).toEqual(MAIL);
    expect(res.status).toBe(202);
    expect(res.data).toBeNull();
    expect(res.headers['x-message-id']).toMatch(/^[0-9A-Za-z]{22}$/);
  });

  it('does not retry a 500 (the mail may have been accepted); does retry a 429', async () => {
    let before = fake.api.requests.length;
    fake.mock.failNext(1, 500);
    expect((await callError(client('SendGridWire2').send_mail(MAIL))).failure.status).toBe(500);
    expect(fake.api.requests.length - before).toBe(1);
    before = fake.api.requests.length;
    fake.mock.failNext(1, { status: 429, headers: { 'retry-after': '0' } });
    await client('SendGridWire3').send_mail(MAIL);
    expect(fake.api.requests.length - before).toBe(2);
  });

  it('an invalid message is a 400 with the field, not retried', async () => {
    const err = await callError(
      client('SendGridWire4').send_mail({
        ...MAIL,
        personalizations: [{ to: [{ email: 'not-an-address' }] }],
      }),
    );
    expect(err.failure).toMatchObject({
      status: 400,
      body: {
        errors: [
          { field: 'personalizations.0.to.0.email', message: 'Does not contain a valid address.' },
        ],
      },
    });
  });
});

describe('sendgrid mock', () => {
  const send = (body: unknown) => sendgridMock()(mockReq('POST', '/v3/mail/send', { body }));

  it('202 with a deterministic message id; 200 in sandbox mode', () => {
    const a = send(MAIL);
    expect(a.status).toBe(202);
    expect(a.headers?.['x-message-id']).toBe(send(MAIL).headers?.['x-message-id']);
    expect(send({ ...MAIL, mail_settings: { sandbox_mode: { enable: true } } }).status).toBe(200);
  });

  it('reports every missing field at once, and refuses an unverified sender with 403', () => {
    const res = send({});
    expect(res.status).toBe(400);
    expect((res.body as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([
      'personalizations',
      'from',
      'subject',
      'content',
    ]);
    expect(
      send({ ...MAIL, template_id: 'd-123', subject: undefined, content: undefined }).status,
    ).toBe(202);
    expect(send({ ...MAIL, from: { email: 'shop@unverified.test' } })).toMatchObject({
      status: 403,
      body: { errors: [{ field: 'from' }] },
    });
  });
});
