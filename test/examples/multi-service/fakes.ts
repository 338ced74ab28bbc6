/**
 * Local fake travel providers for the multi-service tests: real HTTP on 127.0.0.1, one server
 * per provider. Bookings are idempotent by `Idempotency-Key` (a repeated key gets the same
 * booking back), so `bookings` counts real ones; `down` answers 503 to everything; offers in
 * `reject` answer 409; `hold()` keeps requests unanswered until `release()`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

export class TravelFake {
  readonly seen: Seen[] = [];
  /** Bookings by idempotency key. */
  readonly bookings = new Map<string, { bookingId: string; offerId: string; status: string }>();
  readonly cancelled: string[] = [];
  down = false;
  readonly reject = new Set<string>();
  private held: Array<() => void> | undefined;
  private next = 1;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    readonly kind: string,
    readonly key: string,
  ) {}

  static async start(kind: string): Promise<TravelFake> {
    const made: TravelFake[] = [];
    const server = createServer((req, res) => void made[0]?.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const fake = new TravelFake(server, `http://127.0.0.1:${port}`, kind, `key-${kind}`);
    made.push(fake);
    return fake;
  }

  /** Requests seen whose method and path start as given. */
  count(method: string, prefix: string): number {
    return this.seen.filter((s) => s.method === method && s.path.startsWith(prefix)).length;
  }

  /** The idempotency keys of booking requests, in arrival order. */
  bookingKeys(): string[] {
    return this.seen.filter((s) => s.method === 'POST').map((s) => s.headers['idempotency-key']!);
  }

  /** Holds every request (until `release()`), having recorded it. */
  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const go of held) go();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    const url = new URL(req.url ?? '/', this.url);
    const seen: Seen = {
      method: req.method ?? 'GET',
      path: url.pathname + url.search,
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
      body: text ? JSON.parse(text) : undefined,
    };
    this.seen.push(seen);
    const answer = (status: number, body: unknown) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (this.held) await new Promise<void>((go) => this.held!.push(go));
    if (seen.headers.authorization !== `Bearer ${this.key}`)
      return answer(401, { error: 'bad key' });
    if (this.down) return answer(503, { error: `${this.kind} down` });
    if (seen.method === 'GET' && url.pathname === `/${this.kind}`) {
      const d = url.searchParams.get('destination') ?? '';
      return answer(200, [
        { id: `${this.kind}-${d}-2`, provider: this.kind, price: 200, description: 'dear' },
        { id: `${this.kind}-${d}-1`, provider: this.kind, price: 100, description: 'cheap' },
      ]);
    }
    if (seen.method === 'GET' && url.pathname.startsWith('/forecast/')) {
      return answer(200, {
        city: decodeURIComponent(url.pathname.slice(10)),
        summary: 'sunny',
        source: 'provider',
      });
    }
    if (seen.method === 'POST' && url.pathname === '/bookings') {
      const offerId = (seen.body as { offerId: string }).offerId;
      if (this.reject.has(offerId)) return answer(409, { error: 'sold_out' });
      const key = seen.headers['idempotency-key'] ?? `none-${this.next}`;
      let booking = this.bookings.get(key);
      if (!booking) {
        booking = { bookingId: `${this.kind}-B${this.next++}`, offerId, status: 'confirmed' };
        this.bookings.set(key, booking);
      }
      return answer(201, booking);
    }
    if (seen.method === 'DELETE' && url.pathname.startsWith('/bookings/')) {
      const id = url.pathname.slice('/bookings/'.length);
      const known = [...this.bookings.values()].find((b) => b.bookingId === id);
      if (!known) return answer(404, { error: 'no such booking' });
      if (known.status !== 'cancelled') this.cancelled.push(id);
      known.status = 'cancelled';
      return answer(200, known);
    }
    return answer(404, { error: 'no route' });
  }
}

/** One fake per provider, and the environment that points the integrations at them. */
export async function startFakes() {
  const fakes = {
    flights: await TravelFake.start('flights'),
    hotels: await TravelFake.start('hotels'),
    cars: await TravelFake.start('cars'),
    weather: await TravelFake.start('forecast'),
  };
  const env: Record<string, string> = {};
  for (const [name, f] of Object.entries(fakes)) {
    env[`TRAVEL_${name.toUpperCase()}_URL`] = f.url;
    env[`TRAVEL_${name.toUpperCase()}_KEY`] = f.key;
  }
  return {
    ...fakes,
    env,
    async close() {
      for (const f of Object.values(fakes)) await f.close();
    },
  };
}
