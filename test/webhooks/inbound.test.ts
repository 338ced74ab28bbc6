import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { object, service, shared, workflow, type ObjectContext } from '../../src/index.js';
import {
  applyStatus,
  StatusOrder,
  type InboundEvent,
  type ReceiverOptions,
} from '../../src/webhooks/index.js';
import { until } from '../helpers.js';
import { hooked, type Hooked } from './helpers.js';

/**
 * Every receiver end to end through the ingress: a valid request is routed once, a tampered
 * body, a wrong secret and a stale timestamp are 401 with no state change, a redelivery is 200
 * and does nothing. The signatures here are made with node:crypto from each provider's spec.
 */
const seen: Array<{ receiver: string; id: string; type: string }> = [];
const Inbox = service({
  name: 'Inbox',
  handlers: {
    record: async (_ctx, e: InboundEvent) => {
      seen.push({ receiver: e.receiver, id: e.id, type: e.type });
    },
  },
});

/** Shippo tracking: events of one parcel go to one object; the status only moves forward. */
const parcel = new StatusOrder(['UNKNOWN', 'PRE_TRANSIT', 'TRANSIT', 'DELIVERED', 'RETURNED'], {
  terminal: ['DELIVERED', 'RETURNED'],
});
const Shipments = object({
  name: 'Shipments',
  handlers: {
    track: async (ctx: ObjectContext, e: InboundEvent) => {
      const s = e.data.data.tracking_status as { status: 'TRANSIT'; status_date: string };
      return applyStatus(ctx, 'status', { status: s.status, at: s.status_date }, parcel);
    },
    status: shared(async (ctx) => ctx.get<{ status: string }>('status')),
  },
});

/** Seed 000 exercise 5: a deployment waits for GitHub's deployment_status webhook. */
const Deploy = workflow({
  name: 'Deploy',
  run: async (ctx, input: { ref: string }) => {
    const { id, promise } = ctx.awakeable<{ state: string }>();
    ctx.set('awakeable', id);
    await ctx.run('create deployment', () => ({ ref: input.ref, payload: { awakeable: id } }));
    return promise.orTimeout('10m');
  },
  handlers: { awakeable: async (ctx) => ctx.get<string>('awakeable') },
});

const SECRET = 'provider-secret';
const WHSEC = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SHIPPO_TOKEN = 'tok_123';
const sendgridKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const toInbox = (): { target: typeof Inbox; handler: string } => ({
  target: Inbox,
  handler: 'record',
});

const receivers: Record<string, ReceiverOptions> = {
  stripe: { provider: 'stripe', secret: SECRET, route: toInbox },
  github: {
    provider: 'github',
    secret: SECRET,
    route: (e) =>
      e.type === 'deployment_status'
        ? {
            awakeable: e.data.deployment.payload.awakeable,
            value: { state: e.data.deployment_status.state },
          }
        : toInbox(),
  },
  slack: { provider: 'slack', secret: SECRET, route: toInbox },
  twilio: { provider: 'twilio', secret: SECRET, route: toInbox },
  sendgrid: {
    provider: 'sendgrid',
    secret: sendgridKeys.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    route: toInbox,
  },
  shippo: {
    provider: 'shippo',
    secret: { token: SHIPPO_TOKEN, hmacSecret: SECRET },
    route: (e) => ({ target: Shipments, key: e.data.data.tracking_number, handler: 'track' }),
  },
  peers: { provider: 'standard-webhooks', secret: WHSEC, route: toInbox },
};

let h: Hooked;
beforeAll(async () => {
  h = await hooked([Inbox, Shipments, Deploy], { receivers });
});
afterAll(async () => h.close());

const hex = (key: string | Buffer, text: string, alg = 'sha256') =>
  createHmac(alg, key).update(text).digest('hex');
const now = () => Math.floor(h.clock.now() / 1000);

interface Req {
  path: string;
  body: string;
  headers: Record<string, string>;
}

/** A signed request per provider; `secret`, `ts` and `body` can be swapped for a bad one. */
const signers: Record<
  string,
  (o: { body: string; ts: number; secret: string; id: string }) => Req
> = {
  stripe: ({ body, ts, secret }) => ({
    path: '/webhooks/stripe',
    body,
    headers: { 'stripe-signature': `t=${ts},v1=${hex(secret, `${ts}.${body}`)}` },
  }),
  slack: ({ body, ts, secret }) => ({
    path: '/webhooks/slack',
    body,
    headers: {
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': `v0=${hex(secret, `v0:${ts}:${body}`)}`,
    },
  }),
  sendgrid: ({ body, ts, secret }) => {
    const key: KeyObject =
      secret === SECRET
        ? sendgridKeys.privateKey
        : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    return {
      path: '/webhooks/sendgrid',
      body,
      headers: {
        'x-twilio-email-event-webhook-timestamp': String(ts),
        'x-twilio-email-event-webhook-signature': sign('sha256', Buffer.from(`${ts}${body}`), {
          key,
          dsaEncoding: 'der',
        }).toString('base64'),
      },
    };
  },
  shippo: ({ body, ts, secret }) => ({
    path: `/webhooks/shippo?token=${SHIPPO_TOKEN}`,
    body,
    headers: { 'shippo-auth-signature': `t=${ts},v1=${hex(secret, `${ts}.${body}`)}` },
  }),
  peers: ({ body, ts, secret, id }) => {
    const key = Buffer.from(
      (secret === SECRET ? WHSEC : 'whsec_d3Jvbmcgc2VjcmV0IGtleSBieXRlcw==').slice(6),
      'base64',
    );
    return {
      path: '/webhooks/peers',
      body,
      headers: {
        'webhook-id': id,
        'webhook-timestamp': String(ts),
        'webhook-signature': `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`,
      },
    };
  },
  github: ({ body, secret, id }) => ({
    path: '/webhooks/github',
    body,
    headers: {
      'x-hub-signature-256': `sha256=${hex(secret, body)}`,
      'x-github-delivery': id,
      'x-github-event': 'push',
    },
  }),
  twilio: ({ body, secret, id }) => {
    const url = `${h.ingress.url}/webhooks/twilio`;
    const params = [...new URLSearchParams(body)].sort(([a], [b]) => (a < b ? -1 : 1));
    const data = url + params.map(([k, v]) => k + v).join('');
    return {
      path: '/webhooks/twilio',
      body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': createHmac('sha1', secret).update(data).digest('base64'),
        'i-twilio-idempotency-token': id,
      },
    };
  },
};

const bodies: Record<string, (id: string) => string> = {
  stripe: (id) =>
    JSON.stringify({
      id,
      object: 'event',
      type: 'charge.succeeded',
      data: { object: { id: 'ch_1' } },
    }),
  slack: (id) =>
    JSON.stringify({
      type: 'event_callback',
      event_id: id,
      event: { type: 'app_mention', text: 'hi' },
    }),
  sendgrid: (id) =>
    JSON.stringify([{ email: 'a@example.com', event: 'delivered', sg_event_id: id }]),
  shippo: (id) =>
    JSON.stringify({
      event: 'track_updated',
      data: {
        tracking_number: `TRK-${id}`,
        tracking_status: { object_id: id, status: 'TRANSIT', status_date: '2026-01-01T00:00:00Z' },
      },
    }),
  peers: (id) => JSON.stringify({ type: 'order.shipped', data: { id } }),
  github: (id) => JSON.stringify({ ref: 'refs/heads/main', id }),
  twilio: (id) =>
    new URLSearchParams({
      MessageSid: `SM${id}`,
      MessageStatus: 'delivered',
      To: '+15005550006',
    }).toString(),
};

async function post(req: Req): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(h.ingress.url + req.path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...req.headers },
    body: req.body,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

const WITH_TIMESTAMPS = ['stripe', 'slack', 'sendgrid', 'shippo', 'peers'];
let n = 0;

describe.each(Object.keys(signers))('receiver %s', (provider) => {
  const sign = signers[provider]!;
  const body = bodies[provider]!;

  it('accepts a valid request once, and acknowledges a redelivery without acting on it', async () => {
    const id = `ok${++n}`;
    const req = sign({ body: body(id), ts: now(), secret: SECRET, id });
    const first = await post(req);
    expect(first.status).toBe(200);
    if (provider === 'twilio') expect(first.text).toContain('<Response>');
    else expect(first.json.events[0]).toMatchObject({ status: 'accepted' });
    const again = await post(req);
    expect(again.status).toBe(200);
    if (provider !== 'twilio') expect(again.json.events[0].status).toBe('duplicate');
    if (provider === 'shippo') {
      await until(
        async () => (await h.engine.client(Shipments, `TRK-${id}`).status()) !== undefined,
        'tracked',
      );
    } else {
      await until(() => seen.some((s) => s.receiver === provider), 'routed');
      await h.clock.advance('1s');
      expect(seen.filter((s) => s.receiver === provider)).toHaveLength(1);
    }
  });

  it('refuses a tampered body, a wrong secret and a stale timestamp with 401, changing nothing', async () => {
    const before = seen.length;
    const invocations = (await h.engine.listInvocations({ limit: 1000 })).invocations.length;
    const id = `bad${++n}`;
    const good = sign({ body: body(id), ts: now(), secret: SECRET, id });
    const attempts: Req[] = [
      { ...good, body: good.body.replace(id, `${id}x`) },
      sign({ body: body(id), ts: now(), secret: 'not-the-secret', id }),
    ];
    if (WITH_TIMESTAMPS.includes(provider))
      attempts.push(sign({ body: body(id), ts: now() - 301, secret: SECRET, id }));
    for (const req of attempts) {
      const res = await post(req);
      expect(res.status).toBe(401);
      expect(res.json.code).toBe('invalid_signature');
    }
    expect(seen.length).toBe(before);
    expect((await h.engine.listInvocations({ limit: 1000 })).invocations.length).toBe(invocations);
  });
});

describe('receivers, end to end', () => {
  it("accepts Slack's published example at its time, and answers its URL check", async () => {
    // Slack's example ("Verifying requests from Slack"): a slash command, signed at 1531420618.
    const SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
    const body =
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': '1531420618',
      'x-slack-signature': 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
    };
    // Under another secret (and years after its timestamp), the example must fail.
    const res0 = await post({ path: '/webhooks/slack', body, headers });
    expect(res0.status).toBe(401);

    const slack: ReceiverOptions = { ...receivers.slack!, secret: SLACK_SECRET } as ReceiverOptions;
    const vector = await hooked([Inbox], { receivers: { slack } }, 1531420618_000 + 20_000);
    try {
      const res = await fetch(`${vector.ingress.url}/webhooks/slack`, {
        method: 'POST',
        headers,
        body,
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).events[0]).toMatchObject({
        status: 'accepted',
        type: '/webhook-collect',
      });
      // The Events API URL check is answered with the challenge, not routed.
      const check = JSON.stringify({ type: 'url_verification', challenge: 'c-123' });
      const res2 = await fetch(`${vector.ingress.url}/webhooks/slack`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-slack-request-timestamp': '1531420618',
          'x-slack-signature': `v0=${hex(SLACK_SECRET, `v0:1531420618:${check}`)}`,
        },
        body: check,
      });
      expect(await res2.json()).toEqual({ challenge: 'c-123' });
    } finally {
      await vector.close();
    }
  });

  it('accepts the Standard Webhooks published vector at its time', async () => {
    const peers = await hooked([Inbox], { receivers: { peers: receivers.peers! } }, 1614265330_000);
    try {
      const res = await fetch(`${peers.ingress.url}/webhooks/peers`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
          'webhook-timestamp': '1614265330',
          'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
        },
        body: '{"test": 2432232314}',
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).events[0]).toMatchObject({
        id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
        status: 'accepted',
      });
    } finally {
      await peers.close();
    }
  });

  it('keeps a delivered parcel delivered when an older in-transit update arrives after it', async () => {
    const shippo = (status: string, at: string, objectId: string) => {
      const body = JSON.stringify({
        event: 'track_updated',
        data: {
          tracking_number: 'PARCEL-1',
          tracking_status: { object_id: objectId, status, status_date: at },
        },
      });
      return post(signers.shippo!({ body, ts: now(), secret: SECRET, id: objectId }));
    };
    expect((await shippo('DELIVERED', '2026-01-03T12:00:00Z', 'st_3')).status).toBe(200);
    expect((await shippo('TRANSIT', '2026-01-02T09:00:00Z', 'st_2')).status).toBe(200);
    expect((await shippo('PRE_TRANSIT', '2026-01-01T08:00:00Z', 'st_1')).status).toBe(200);
    const parcelStatus = () => h.engine.client(Shipments, 'PARCEL-1').status();
    await until(
      async () =>
        (
          await h.engine.listInvocations({
            service: 'Shipments',
            key: 'PARCEL-1',
            status: 'completed',
          })
        ).invocations.length === 3,
      'all three processed',
    );
    expect(await parcelStatus()).toEqual({ status: 'DELIVERED', at: '2026-01-03T12:00:00Z' });
  });

  it('resolves the awakeable of a waiting deployment from a verified GitHub event', async () => {
    const run = await h.engine.send({
      service: 'Deploy',
      handler: 'run',
      key: 'd-1',
      input: { ref: 'main' },
    });
    let awakeable: string | undefined;
    await until(
      async () =>
        (awakeable = (await h.engine.client(Deploy, 'd-1').awakeable()) ?? undefined) !== undefined,
      'the awakeable',
    );
    const body = JSON.stringify({
      deployment: { id: 7, payload: { awakeable } },
      deployment_status: { state: 'success' },
    });
    const req: Req = {
      path: '/webhooks/github',
      body,
      headers: {
        'x-hub-signature-256': `sha256=${hex(SECRET, body)}`,
        'x-github-delivery': 'gh-deploy-1',
        'x-github-event': 'deployment_status',
      },
    };
    const res = await post(req);
    expect(res.status).toBe(200);
    expect(res.json.events[0]).toMatchObject({ status: 'accepted', type: 'deployment_status' });
    expect(await h.engine.attach(run.invocationId)).toEqual({ state: 'success' });
    expect((await post(req)).json.events[0].status).toBe('duplicate');
  });

  it('routes each event of a SendGrid batch once, and answers unknown receivers and methods', async () => {
    const before = seen.filter((s) => s.receiver === 'sendgrid').length;
    const body = JSON.stringify([
      { event: 'delivered', sg_event_id: 'sg-a' },
      { event: 'open', sg_event_id: 'sg-b' },
    ]);
    const res = await post(signers.sendgrid!({ body, ts: now(), secret: SECRET, id: '' }));
    expect(res.json.events.map((e: any) => [e.id, e.type, e.status])).toEqual([
      ['sg-a', 'delivered', 'accepted'],
      ['sg-b', 'open', 'accepted'],
    ]);
    await until(
      () => seen.filter((s) => s.receiver === 'sendgrid').length === before + 2,
      'both routed',
    );
    const unknown = await post({ path: '/webhooks/paypal', body: '{}', headers: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.json.message).toContain('/webhooks/stripe');
    const get = await fetch(`${h.ingress.url}/webhooks/stripe`);
    expect(get.status).toBe(405);
  });
});

describe('replays of a captured delivery', () => {
  const inboxRuns = async () =>
    (await h.engine.listInvocations({ service: 'Inbox', limit: 1000 })).invocations.length;

  // GitHub and Twilio sign no timestamp, and their delivery ids are headers the signature does
  // not cover: the receiver also remembers what the signature covers.
  it.each(['github', 'twilio'])(
    '%s: a replay under a fresh delivery id is acknowledged and starts nothing',
    async (provider) => {
      const id = `cap${++n}`;
      const captured = signers[provider]!({
        body: bodies[provider]!(id),
        ts: 0,
        secret: SECRET,
        id,
      });
      expect((await post(captured)).status).toBe(200);
      await until(() => seen.some((s) => s.id === id), 'the original routed');
      const runs = await inboxRuns();

      const replays: Req[] = [];
      for (const fresh of ['replay-1', 'replay-2'])
        replays.push({
          ...captured,
          headers: {
            ...captured.headers,
            [provider === 'github' ? 'x-github-delivery' : 'i-twilio-idempotency-token']: fresh,
          },
        });
      if (provider === 'twilio') {
        // Twilio signs the form parameters sorted: a reordered body verifies as well.
        const reordered = [...new URLSearchParams(captured.body)].reverse();
        replays.push({
          ...captured,
          body: new URLSearchParams(reordered).toString(),
          headers: { ...captured.headers, 'i-twilio-idempotency-token': 'replay-3' },
        });
      }
      for (const replay of replays) {
        const res = await post(replay);
        expect(res.status).toBe(200);
        if (provider === 'github') expect(res.json.events[0].status).toBe('duplicate');
      }
      await h.clock.advance('1s');
      expect(await inboxRuns()).toBe(runs);
      expect(seen.filter((s) => s.id.startsWith('replay-'))).toEqual([]);
    },
  );

  it.each(WITH_TIMESTAMPS)(
    '%s: a captured delivery replayed after the tolerance is refused with 401',
    async (provider) => {
      const id = `old${++n}`;
      const captured = signers[provider]!({
        body: bodies[provider]!(id),
        ts: now(),
        secret: SECRET,
        id,
      });
      expect((await post(captured)).status).toBe(200);
      const runs = await inboxRuns();
      await h.clock.advance('301s');
      const res = await post(captured);
      expect(res.status).toBe(401);
      expect(res.json.code).toBe('invalid_signature');
      expect(await inboxRuns()).toBe(runs);
    },
  );
});
