/**
 * Webhooks in tests (`t.webhooks`): deliver a signed inbound webhook to a receiver in one call,
 * and capture outbound deliveries.
 *
 * Inbound: the kit signs the request as the receiver's provider would, with the receiver's own
 * secret (or a wrong one, or none), and sends it through Keel's real ingress (`serve` on
 * 127.0.0.1, driven through `ingress.handle`, which parses it with Node's HTTP server from an
 * in-memory connection): the receiver verifies, deduplicates and routes it exactly as in
 * production.
 *
 * Outbound: `t.webhooks.endpoint()` registers an endpoint whose URL is a real HTTP server of the
 * kit on 127.0.0.1 (the test app allows that address for webhooks); the real delivery code signs
 * and posts to it, with its retry schedule, breaker and dead-letter queue on the fake clock. The
 * server records every request and answers as scripted (200 by default).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';
import type { Engine } from '../engine/engine.js';
import type { IngressServer } from '../ingress/server.js';
import type { ReceiverOptions } from '../webhooks/inbound/types.js';
import type { DeliveryRecord, EndpointRecord } from '../webhooks/outbound/types.js';
import type { Webhooks } from '../webhooks/setup.js';
import { verify as verifyStandard } from '../webhooks/standard.js';
import { mockReply, Script, type Responder } from './answers.js';
import { TestAppError } from './errors.js';
import { deliveryIdFor, signInbound, type SignatureMode } from './webhook-signing.js';

/** The origin of delivered requests (it becomes their `Host` header). */
const ORIGIN = 'http://keel.test';

/** Options of {@link TestWebhooks.deliver}. */
export interface DeliverOptions {
  /**
   * `valid` (default): signed with the receiver's secret (the first, during a rotation); `bad`:
   * signed with a wrong one; `none`: no signature (Shippo: no token either).
   */
  signature?: SignatureMode;
  /**
   * The delivery id where the provider sends it in a header (`webhook-id`, `X-GitHub-Delivery`,
   * `I-Twilio-Idempotency-Token`). Default: a fresh one per call. Give the same id twice to
   * test a redelivery.
   */
  id?: string;
  /** GitHub's event type (`X-GitHub-Event`). Default `ping`. */
  event?: string;
  /** When the request was signed (epoch ms). Default: now on the fake clock. */
  signedAt?: number;
  /** More headers (they win over the kit's). */
  headers?: Record<string, string>;
  /** Query parameters to add to the URL. */
  query?: Record<string, string>;
  /**
   * SendGrid only: the private key whose public half is the receiver's verification key (PEM,
   * base64 PKCS#8 DER, or a `KeyObject`). SendGrid keeps its private key, so the kit cannot
   * sign without one.
   */
  privateKey?: string | KeyObject;
  /** Wait for the test app to be idle after the answer (default true), as `t.idle()`. */
  idle?: boolean;
}

/** The ingress's answer to a delivered webhook. */
export interface DeliveryResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON (`{ events: [{ id, type, status, invocationId }] }` when accepted), or text. */
  body: any;
}

/** One request a captured endpoint received: one attempt of one outbound delivery. */
export interface SentWebhook {
  /** The endpoint's id (as `t.webhooks.endpoint()` returned it). */
  endpoint: string;
  url: string;
  /** The message id (`webhook-id`), the same on every attempt of one delivery. */
  id: string;
  /** The event type. */
  type: string;
  /** The event's payload (the body's `data`). */
  payload: any;
  /** The body exactly as sent (JSON text: `{ type, timestamp, data }`). */
  body: string;
  /** Lower-case names: `webhook-id`, `webhook-timestamp`, `webhook-signature`, ... */
  headers: Record<string, string>;
  /** Whether the Standard Webhooks signature verifies with the endpoint's secret, now. */
  signatureValid: boolean;
  /** When it arrived, on the fake clock (epoch ms). */
  at: number;
  /** 1 for the first attempt of this message at this endpoint, 2 for its first retry, ... */
  attempt: number;
  /** What the endpoint answered; unset for a simulated timeout or dropped connection. */
  status?: number;
}

/** Options of {@link TestWebhooks.endpoint}. */
export interface CaptureEndpointOptions {
  /** Event types it subscribes to (`order.shipped`, `order.*`, `*`). Default `['*']`. */
  events?: string[];
  name?: string;
  /**
   * How it answers: a status (`500`: a bare number here is a status, not a body), `mockFail`,
   * `mockReply`, a sequence (`[500, 500, 200]`), or a function of the request (see
   * `Responder`). Default, and once a script with `times` runs out: 200 `{}`.
   */
  respond?: Responder<SentWebhook>;
}

/** An outbound endpoint whose deliveries the kit captures. */
export interface CaptureEndpoint {
  /** The endpoint's id. */
  readonly id: string;
  readonly url: string;
  /** Its Standard Webhooks signing secret (`whsec_...`). */
  readonly secret: string;
  /** The requests it received so far, oldest first. */
  sent(filter?: Omit<SentFilter, 'endpoint'>): SentWebhook[];
  /** Replaces how it answers from now on. */
  respond(responder: Responder<SentWebhook>): void;
}

/** Which captured requests {@link TestWebhooks.sent} returns. */
export interface SentFilter {
  /** An endpoint's id, or the endpoint. */
  endpoint?: string | CaptureEndpoint;
  type?: string;
  /** The message id. */
  id?: string;
}

interface Captured {
  record: EndpointRecord;
  path: string;
  script: Script<SentWebhook>;
}

/**
 * `t.webhooks`: delivers signed inbound webhooks and captures outbound ones. Needs the test app
 * started with `webhooks: { ... }` (the options `startApp` takes).
 */
export class TestWebhooks {
  private ingress: Promise<IngressServer> | undefined;
  private capture: Promise<{ server: Server; url: string }> | undefined;
  private readonly endpoints = new Map<string, Captured>();
  private readonly captured: SentWebhook[] = [];
  private seq = 0;

  /** Use `t.webhooks`. */
  constructor(
    private readonly parts: {
      engine: Engine;
      extension: Webhooks | undefined;
      receivers: Record<string, ReceiverOptions>;
      idle: () => Promise<void>;
    },
  ) {}

  /** The webhooks extension (`publish`, `createEndpoint`, `runtime`), as `startApp` has it. */
  get extension(): Webhooks {
    return this.requireExtension();
  }

  private requireExtension(): Webhooks {
    const ext = this.parts.extension;
    if (ext === undefined)
      throw new TestAppError(
        'the test app has no webhooks: start it with testApp({ webhooks: { receivers: { ... } } })',
        'not_configured',
      );
    return ext;
  }

  /**
   * Sends `payload` to the receiver named `receiver` (`POST /webhooks/{receiver}`), signed as
   * its provider signs, with its configured secret, through the real ingress; resolves with the
   * ingress's answer once the test app is idle again (the routed handler has run, unless it
   * waits for time). An object payload is sent as JSON (Twilio: form-encoded), a string as it is
   * (with `content-type: application/json`, Twilio's form type; `headers` may change it).
   *
   * @example
   * ```ts
   * const res = await t.webhooks.deliver('stripe', {
   *   id: 'evt_1',
   *   type: 'charge.succeeded',
   *   data: { object: { metadata: { order_id: 'o1' } } },
   * });
   * expect(res.status).toBe(200);
   * expect(await t.state(AggregatedOrder, 'o1')).toMatchObject({ paid: true });
   *
   * const refused = await t.webhooks.deliver('stripe', { id: 'evt_2' }, { signature: 'bad' });
   * expect(refused.status).toBe(401);
   * ```
   */
  async deliver(
    receiver: string,
    payload: unknown,
    options: DeliverOptions = {},
  ): Promise<DeliveryResponse> {
    const config = Object.hasOwn(this.parts.receivers, receiver)
      ? this.parts.receivers[receiver]
      : undefined;
    if (config === undefined) {
      this.requireExtension(); // no webhooks at all: say so first
      const names = Object.keys(this.parts.receivers);
      throw new TestAppError(
        `no webhook receiver named "${receiver}"; configured: ${names.join(', ') || '(none)'}`,
        'not_configured',
      );
    }
    // Twilio posts forms (a string payload is taken as one, already encoded).
    const form = config.provider === 'twilio';
    const body =
      typeof payload === 'string'
        ? payload
        : form
          ? new URLSearchParams(payload as Record<string, string>).toString()
          : JSON.stringify(payload);
    // The URL the receiver checks (Twilio's signature, Shippo's token): its `publicUrl` and the
    // request's path, or else `http://` + the Host header, which `ingress.handle` takes from the
    // request's URL below.
    const path = `/webhooks/${encodeURIComponent(receiver)}`;
    const base = new URL(`${(config.publicUrl ?? ORIGIN).replace(/\/$/, '')}${path}`);
    for (const [k, v] of Object.entries(options.query ?? {})) base.searchParams.set(k, v);
    const signed = signInbound({
      receiver: config,
      name: receiver,
      url: base,
      body,
      at: options.signedAt ?? this.parts.engine.clock.now(),
      id: options.id ?? deliveryIdFor(config.provider),
      event: options.event,
      mode: options.signature ?? 'valid',
      privateKey: options.privateKey,
    });
    const ingress = await (this.ingress ??= this.serveIngress());
    const res = await ingress.handle(
      new Request(`${ORIGIN}${path}${signed.url.search}`, {
        method: 'POST',
        headers: {
          'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
          ...signed.headers,
          ...options.headers,
        },
        body,
      }),
    );
    const text = await res.text();
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    if (options.idle !== false) await this.parts.idle();
    return { status: res.status, headers, body: parse(text) };
  }

  /**
   * Registers an outbound endpoint whose deliveries the kit captures (a real HTTP server on
   * 127.0.0.1), answering as `respond` scripts: 200 by default, or `500` to exercise retries
   * and the dead-letter queue (`mockFail(500, { times: 2 })`: two failures, then 200).
   *
   * @example
   * ```ts
   * const hook = await t.webhooks.endpoint({ events: ['order.*'], respond: [500, 200] });
   * await t.service(Orders).ship('o1'); // publishes order.shipped
   * expect(hook.sent()).toHaveLength(1); // the 500
   * await t.advance('1m'); // the first retry of the schedule [1m, 5m, ...] (±10% jitter)
   * await t.advance('10s');
   * expect(hook.sent().map((s) => s.status)).toEqual([500, 200]);
   * ```
   */
  async endpoint(options: CaptureEndpointOptions = {}): Promise<CaptureEndpoint> {
    const ext = this.extension;
    const { url: base } = await (this.capture ??= this.serveCapture());
    const path = `/hooks/${++this.seq}`;
    const record = await ext.createEndpoint({
      url: base + path,
      events: options.events ?? ['*'],
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    const entry: Captured = {
      record,
      path,
      script: new Script(statusAnswers(options.respond ?? {})),
    };
    this.endpoints.set(path, entry);
    return {
      id: record.id,
      url: record.url,
      secret: record.secret,
      sent: (filter = {}) => this.sent({ ...filter, endpoint: record.id }),
      respond: (responder) => {
        entry.script = new Script(statusAnswers(responder));
      },
    };
  }

  /**
   * The requests the captured endpoints received, oldest first: every attempt of every
   * delivery, optionally filtered by endpoint, event type or message id.
   *
   * @example
   * ```ts
   * const [sent] = t.webhooks.sent({ type: 'order.shipped' });
   * expect(sent!.payload).toEqual({ order: 'o1' });
   * expect(sent!.signatureValid).toBe(true);
   * ```
   */
  sent(filter: SentFilter = {}): SentWebhook[] {
    const endpoint = typeof filter.endpoint === 'object' ? filter.endpoint.id : filter.endpoint;
    return this.captured.filter(
      (s) =>
        (endpoint === undefined || s.endpoint === endpoint) &&
        (filter.type === undefined || s.type === filter.type) &&
        (filter.id === undefined || s.id === filter.id),
    );
  }

  /**
   * An endpoint's delivery log (as the management API lists it), newest first: each delivery
   * with its attempts and status; `failed` ones are the dead-letter queue.
   *
   * @example
   * ```ts
   * const [dead] = await t.webhooks.deliveries(hook, { status: 'failed' });
   * expect(dead!.failure_reason).toBe('exhausted');
   * ```
   */
  async deliveries(
    endpoint: string | CaptureEndpoint,
    filter: { status?: DeliveryRecord['status'] } = {},
  ): Promise<Array<Omit<DeliveryRecord, 'body'>>> {
    const id = typeof endpoint === 'string' ? endpoint : endpoint.id;
    const out: Array<Omit<DeliveryRecord, 'body'>> = [];
    let cursor: string | undefined;
    do {
      const page = await this.extension.runtime.log.list(id, {
        ...(filter.status === undefined ? {} : { status: filter.status }),
        limit: 1000,
        ...(cursor === undefined ? {} : { cursor }),
      });
      out.push(...page.deliveries);
      cursor = page.next_cursor;
    } while (cursor !== undefined);
    return out;
  }

  /** Closes the ingress and the capture server (the test app does, on close). */
  async close(): Promise<void> {
    const ingress = this.ingress;
    const capture = this.capture;
    this.ingress = undefined;
    this.capture = undefined;
    await Promise.all([
      ingress?.then((s) => s.close()).catch(() => undefined),
      capture
        ?.then(
          ({ server }) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        )
        .catch(() => undefined),
    ]);
  }

  private async serveIngress(): Promise<IngressServer> {
    this.requireExtension(); // receivers are served by the webhooks extension's ingress mount
    const { serve } = await import('../ingress/server.js');
    return serve(this.parts.engine, { port: 0, host: '127.0.0.1' });
  }

  private serveCapture(): Promise<{ server: Server; url: string }> {
    const server = createServer((req, res) => {
      this.onRequest(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        resolve({ server, url: `http://127.0.0.1:${port}` });
      });
    });
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const entry = this.endpoints.get((req.url ?? '').split('?')[0]!);
    if (entry === undefined) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const parsed = parse(body) as { type?: string; data?: unknown } | string;
    const id = headers['webhook-id'] ?? '';
    const now = this.parts.engine.clock.now();
    const sent: SentWebhook = {
      endpoint: entry.record.id,
      url: entry.record.url,
      id,
      type: typeof parsed === 'object' && parsed !== null ? String(parsed.type) : '',
      payload: typeof parsed === 'object' && parsed !== null ? parsed.data : undefined,
      body,
      headers,
      signatureValid: verifyStandard({ headers, body, secret: entry.record.secret, now }).ok,
      at: now,
      attempt:
        this.captured.filter((s) => s.endpoint === entry.record.id && s.id === id).length + 1,
    };
    this.captured.push(sent);
    const answer = (await entry.script.next(sent)) ?? {
      kind: 'reply' as const,
      status: 200,
      headers: {},
      body: {},
    };
    switch (answer.kind) {
      case 'timeout':
        // Never answered: the sender's own timeout (`webhooks.timeout`) gives up.
        return;
      case 'network':
        req.socket.destroy();
        return;
      case 'reply': {
        sent.status = answer.status;
        const text =
          typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? null);
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(text);
      }
    }
  }
}

/** A bare status (`500`) in an endpoint's answers means that status, not a body. */
function statusAnswers(r: Responder<SentWebhook>): Responder<SentWebhook> {
  const one = (a: unknown): unknown => (typeof a === 'number' ? mockReply({}, { status: a }) : a);
  return (Array.isArray(r) ? r.map(one) : one(r)) as Responder<SentWebhook>;
}

function parse(text: string): unknown {
  if (text === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
