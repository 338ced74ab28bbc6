import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, slack } from '../../../src/integrations/index.js';
import { slackMock } from '../../../src/integrations/mocks.js';
import { fakeSlack, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const HOOK = '/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX';

let fake: Fake;
beforeAll(async () => {
  fake = await fakeSlack(HOOK);
});
afterAll(() => fake.api.close());

function client(name: string) {
  const s = slack({ name, retry: FAST_RETRY, rateLimit: false });
  return clientOf(runtime({ env: { SLACK_WEBHOOK_URL: `${fake.api.url}${HOOK}` } }), s);
}

describe('slack connector on the wire', () => {
  it('POSTs JSON to the webhook URL itself (no trailing slash, no auth header) and gets ok', async () => {
    const result = await client('SlackWire1').post_message({
      text: 'New order 42: $20.00',
      attachments: [{ fields: [{ title: 'Customer', value: 'Ada', short: true }] }],
    });
    const r = fake.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe(HOOK);
    expect(r.headers.authorization).toBeUndefined();
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.text)).toEqual({
      text: 'New order 42: $20.00',
      attachments: [{ fields: [{ title: 'Customer', value: 'Ada', short: true }] }],
    });
    expect(result).toBe('ok');
  });

  it('an error word is not retried; a 429 is, after Retry-After', async () => {
    let before = fake.api.requests.length;
    const err = await callError(client('SlackWire2').post_message({ text: '' }));
    expect(err.failure).toMatchObject({ status: 400, body: 'no_text' });
    expect(fake.api.requests.length - before).toBe(1);

    before = fake.api.requests.length;
    fake.mock.failNext(1, { status: 429, headers: { 'retry-after': '0' }, body: 'rate_limited' });
    expect(await client('SlackWire3').post_message({ text: 'hi' })).toBe('ok');
    expect(fake.api.requests.length - before).toBe(2);
  });

  it('declares 1 message per second and takes the URL from the environment', () => {
    const s = slack({ webhookUrl: env('SLACK_OPS_WEBHOOK_URL') });
    expect(s.rateLimit).toMatchObject({ requests: 1, windowMs: 1000 });
    expect(s.baseUrl).toEqual({ env: 'SLACK_OPS_WEBHOOK_URL' });
    expect(s.operations.post_message).toMatchObject({ method: 'POST', path: '' });
  });
});

describe('slack mock', () => {
  const post = (body: unknown, mock = slackMock()) => mock(mockReq('POST', '', { body }));

  it('answers ok and keeps the messages', async () => {
    const mock = slackMock();
    const s = clientOf(
      runtime({ mock: true, env: {} }),
      slack({ name: 'SlackMock1', mock, rateLimit: false }),
    );
    expect(await s.post_message({ text: 'Payment failed for order 7' })).toBe('ok');
    expect(mock.requests.map((r) => (r.body as { text: string }).text)).toEqual([
      'Payment failed for order 7',
    ]);
  });

  it('gives Slack error words for bad messages and the documented channels', () => {
    expect(post({})).toMatchObject({ status: 400, body: 'no_text' });
    expect(post({ blocks: 'x' })).toMatchObject({ status: 400, body: 'invalid_blocks' });
    expect(post({ blocks: [{ text: 'no type' }] })).toMatchObject({
      status: 400,
      body: 'invalid_blocks',
    });
    expect(post({ text: 'x', channel: '#archived' })).toMatchObject({
      status: 410,
      body: 'channel_is_archived',
    });
    expect(post({ text: 'x', channel: '#missing-ops' })).toMatchObject({
      status: 404,
      body: 'channel_not_found',
    });
    expect(
      post({ blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*hi*' } }] }),
    ).toMatchObject({
      status: 200,
      body: 'ok',
    });
  });
});
