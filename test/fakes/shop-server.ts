/**
 * A fake shop backend on 127.0.0.1 (real HTTP) for the declarative-flow tests: inventory,
 * payments and shipping, each POST idempotent by `Idempotency-Key` (a repeated key gets the
 * first answer back and does nothing again), with failures and held requests on demand.
 *
 * - `POST /inventory/reserve` `{ sku, qty }` → `{ reservationId, sku, qty }`
 * - `POST /inventory/release` `{ reservationId }` → `{ released }`
 * - `POST /payments/charge` `{ amount, orderId? }` → `{ chargeId, amount, status: 'paid' }`; an amount over
 *   1000 → 402 `{ error: 'card_declined' }`
 * - `POST /payments/refund` `{ chargeId }` or `{ orderId }` → `{ refunded: chargeId | null }`
 * - `POST /shipping/ship` `{ address }` → `{ trackingNumber }`
 * - `GET /quote?sku=` → `{ sku, price: 10 }`
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ShopRequest {
  method: string;
  path: string;
  key: string | undefined;
  body: any;
}

type Answer = { status: number; body: unknown };

export class ShopServer {
  readonly requests: ShopRequest[] = [];
  /** First answers by idempotency key: the side effects actually done. */
  readonly effects = new Map<string, { path: string; answer: Answer }>();
  private failures = new Map<string, Array<{ status: number; body?: unknown }>>();
  private holds = new Map<
    string,
    { promise: Promise<void>; release: () => void; arrived: () => void; arrival: Promise<void> }
  >();
  private alwaysFail = new Map<string, number>();
  private n = 0;
  /** Charge ids by order id, for a refund by order. */
  readonly chargesByOrder = new Map<string, string>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(port = 0): Promise<ShopServer> {
    const holder: { self?: ShopServer } = {};
    const server = createServer((req, res) => void holder.self!.handle(req, res));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const { port: p } = server.address() as AddressInfo;
    holder.self = new ShopServer(server, `http://127.0.0.1:${p}`);
    return holder.self;
  }

  /** The next `times` requests to `path` fail with `status` (default 500). */
  fail(path: string, times = 1, status = 500, body: unknown = { error: 'unavailable' }): void {
    const list = this.failures.get(path) ?? [];
    for (let i = 0; i < times; i++) list.push({ status, body });
    this.failures.set(path, list);
  }

  /** Every request to `path` fails with `status` until `failAlways(path, undefined)`. */
  failAlways(path: string, status: number | undefined): void {
    if (status === undefined) this.alwaysFail.delete(path);
    else this.alwaysFail.set(path, status);
  }

  /**
   * Holds requests to `path` (after recording them, before doing anything) until `release()`.
   * `arrived` resolves when the first one came.
   */
  hold(path: string): { arrived: Promise<void>; release: () => void } {
    let release!: () => void;
    let arrived!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    const arrival = new Promise<void>((r) => (arrived = r));
    this.holds.set(path, { promise, release, arrived, arrival });
    return {
      arrived: arrival,
      release: () => {
        this.holds.delete(path);
        release();
      },
    };
  }

  /** Requests to `path`. */
  seen(path: string): ShopRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** Side effects done on `path` (distinct idempotency keys answered successfully). */
  done(path: string): number {
    return [...this.effects.values()].filter((e) => e.path === path && e.answer.status < 300)
      .length;
  }

  async close(): Promise<void> {
    for (const h of this.holds.values()) h.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    const key = req.headers['idempotency-key'] as string | undefined;
    let body: any = undefined;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const seen: ShopRequest = { method: req.method ?? '', path: url.pathname, key, body };
    this.requests.push(seen);
    const hold = this.holds.get(url.pathname);
    if (hold) {
      hold.arrived();
      await hold.promise;
    }
    const answer = this.answer(seen, url);
    res.writeHead(answer.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  }

  private answer(r: ShopRequest, url: URL): Answer {
    const always = this.alwaysFail.get(r.path);
    if (always !== undefined) return { status: always, body: { error: 'failing' } };
    const queued = this.failures.get(r.path);
    if (queued && queued.length > 0) {
      const f = queued.shift()!;
      return { status: f.status, body: f.body };
    }
    if (r.method === 'GET' && r.path === '/quote')
      return { status: 200, body: { sku: url.searchParams.get('sku'), price: 10 } };
    if (r.key !== undefined) {
      const first = this.effects.get(`${r.path} ${r.key}`);
      if (first) return first.answer;
    }
    const answer = this.route(r);
    if (r.key !== undefined) this.effects.set(`${r.path} ${r.key}`, { path: r.path, answer });
    else this.effects.set(`${r.path} #${++this.n}`, { path: r.path, answer });
    return answer;
  }

  private route(r: ShopRequest): Answer {
    const n = ++this.n;
    const b = (r.body ?? {}) as Record<string, any>;
    switch (r.path) {
      case '/inventory/reserve':
        return { status: 200, body: { reservationId: `res-${n}`, sku: b.sku, qty: b.qty } };
      case '/inventory/release':
        return { status: 200, body: { released: b.reservationId ?? null } };
      case '/payments/charge':
        if (typeof b.amount === 'number' && b.amount > 1000)
          return { status: 402, body: { error: 'card_declined' } };
        if (typeof b.orderId === 'string') this.chargesByOrder.set(b.orderId, `ch-${n}`);
        return { status: 200, body: { chargeId: `ch-${n}`, amount: b.amount, status: 'paid' } };
      case '/payments/refund':
        return {
          status: 200,
          body: {
            refunded:
              b.chargeId ??
              (typeof b.orderId === 'string' ? (this.chargesByOrder.get(b.orderId) ?? null) : null),
          },
        };
      case '/shipping/ship':
        return { status: 200, body: { trackingNumber: `TRK-${n}`, address: b.address } };
      default:
        return { status: 404, body: { error: `no route ${r.method} ${r.path}` } };
    }
  }
}
