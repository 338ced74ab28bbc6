/**
 * The external services' answers, and one local HTTP server that gives them: every declared
 * service is served under its own path prefix (`POST /{service}/reserve`, `POST /{service}/quote`,
 * `GET /{service}/health`). The mocks (in-process, used until `PLATFORM_SERVICES_URL` is set)
 * answer the same, so the app behaves the same with or without the server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A deterministic unit price in cents for a SKU (same SKU, same price, everywhere). */
export function priceOf(sku: string): number {
  let h = 0;
  for (const c of sku) h = (h * 31 + c.charCodeAt(0)) % 9973;
  return 100 + (h % 4900);
}

/**
 * The answer of `service` to `operation` with `body`, or undefined for an unknown operation.
 *
 * @example
 * ```ts
 * answer('pricing-eu-1', 'quote', { sku: 'A-1', qty: 2 }); // { service, sku, qty, unitPrice, total }
 * ```
 */
export function answer(service: string, operation: string, body: unknown): unknown {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const sku = typeof b.sku === 'string' ? b.sku : 'unknown';
  const qty = typeof b.qty === 'number' ? b.qty : 1;
  switch (operation) {
    case 'reserve':
      return { service, reserved: true, sku, qty, reservationId: `${service}:${sku}:${qty}` };
    case 'quote': {
      const unitPrice = priceOf(sku);
      return { service, sku, qty, unitPrice, total: unitPrice * qty };
    }
    case 'send':
      return { service, sent: true, to: typeof b.to === 'string' ? b.to : 'unknown' };
    case 'health':
      return { service, status: 'ok' };
    default:
      return undefined;
  }
}

/** One request the fake server answered. */
export interface FakeHit {
  service: string;
  operation: string;
  idempotencyKey: string | undefined;
  /** The request body's `sku`, if any (tests name orders by it). */
  sku: string | undefined;
}

/** A running fake: its base URL, what it answered, and `close`. */
export interface FakeServices {
  url: string;
  hits: FakeHit[];
  /** Each answer waits this long first (default 0): keeps work in flight in crash tests. */
  delayMs: number;
  close(): Promise<void>;
}

/**
 * Starts the fake services on 127.0.0.1 (`port` 0: a free one).
 *
 * @example
 * ```ts
 * const fake = await startFakeServices();
 * process.env.PLATFORM_SERVICES_URL = fake.url; // the declared services now call it over HTTP
 * ```
 */
export async function startFakeServices(
  options: { port?: number; record?: boolean } = {},
): Promise<FakeServices> {
  const hits: FakeHit[] = [];
  const fake: FakeServices = { url: '', hits, delayMs: 0, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [, service = '', operation = ''] = (req.url ?? '/').split('?')[0]!.split('/');
      let body: unknown;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        body = undefined;
      }
      const value = answer(service, operation, body);
      const reply = (): void => {
        const text = JSON.stringify(value ?? { error: `unknown operation ${operation}` });
        res.writeHead(value === undefined ? 404 : 200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      };
      if (options.record !== false) {
        const idem = req.headers['idempotency-key'];
        hits.push({
          service,
          operation,
          idempotencyKey: typeof idem === 'string' ? idem : undefined,
          sku:
            typeof (body as { sku?: unknown })?.sku === 'string'
              ? (body as { sku: string }).sku
              : undefined,
        });
      }
      if (fake.delayMs > 0) setTimeout(reply, fake.delayMs);
      else reply();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return fake;
}
