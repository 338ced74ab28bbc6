/**
 * A real HTTP server (127.0.0.1, a free port) that speaks one provider's API: it records every
 * request exactly as it arrived (method, raw path and query, headers, body bytes), checks the
 * credentials the way the provider does, and answers with the connector's own mock logic, so
 * the wire tests see the provider's shapes without a second implementation of them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MockHandler, MockRequest, MockResponse } from '../../../src/integrations/mocks.js';

/** A request as it arrived on the wire. */
export interface WireRecord {
  method: string;
  /** The raw request target: path and query exactly as sent (`/a%20b?x=1`). */
  target: string;
  /** The raw path, still percent-encoded. */
  rawPath: string;
  /** The raw query string, without `?`. */
  rawQuery: string;
  /** Decoded query parameters. */
  query: Record<string, string>;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Buffer;
  /** The body as UTF-8. */
  text: string;
}

/** Options of {@link FakeProvider.start}. */
export interface FakeProviderOptions {
  /** The provider's logic: a connector mock. */
  handler: MockHandler;
  /** Checks credentials like the provider: a response to send instead, or undefined to go on. */
  authenticate?: (req: WireRecord) => MockResponse | undefined;
  /** Stripped from the path before the handler sees it (e.g. `/graphql`). */
  basePath?: string;
}

/**
 * A running fake provider.
 *
 * @example
 * ```ts
 * const api = await FakeProvider.start({ handler: stripeMock(), authenticate: bearerCheck('sk_test_1') });
 * // ... call stripe({ baseUrl: api.url }) ...
 * api.last().headers.authorization; // 'Bearer sk_test_1'
 * await api.close();
 * ```
 */
export class FakeProvider {
  readonly requests: WireRecord[] = [];

  private readonly server: Server;
  private port = 0;

  private constructor(options: FakeProviderOptions) {
    this.server = createServer((req, res) => {
      void handle(this, options, req, res);
    });
  }

  /** `http://127.0.0.1:PORT`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(options: FakeProviderOptions): Promise<FakeProvider> {
    const fake = new FakeProvider(options);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  /** The latest request; throws when there is none. */
  last(): WireRecord {
    const r = this.requests[this.requests.length - 1];
    if (r === undefined) throw new Error('the fake provider has received no request');
    return r;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) =>
      this.server.close((err) => (err ? reject(err) : resolve())),
    );
  }

  record(r: WireRecord): void {
    this.requests.push(r);
  }
}

async function handle(
  fake: FakeProvider,
  options: FakeProviderOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const rawQuery = q === -1 ? '' : target.slice(q + 1);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  const record: WireRecord = {
    method: req.method ?? 'GET',
    target,
    rawPath,
    rawQuery,
    query: Object.fromEntries(new URLSearchParams(rawQuery)),
    headers,
    body,
    text: body.toString('utf8'),
  };
  fake.record(record);

  let answer: MockResponse | undefined = options.authenticate?.(record);
  if (answer === undefined) {
    let path = decodeURIComponent(rawPath);
    if (options.basePath !== undefined && path.startsWith(options.basePath)) {
      path = path.slice(options.basePath.length);
    }
    const type = headers['content-type'] ?? '';
    let parsed: unknown = body.length === 0 ? undefined : record.text;
    if (type.includes('json') && body.length > 0) parsed = JSON.parse(record.text) as unknown;
    const mockReq: MockRequest = {
      integration: 'fake',
      operation: '',
      method: record.method as MockRequest['method'],
      path,
      query: record.query,
      headers,
      body: parsed,
    };
    answer = await options.handler(mockReq);
  }
  const status = answer.status ?? 200;
  const out: Record<string, string> = { ...answer.headers };
  let payload = '';
  if (typeof answer.body === 'string') payload = answer.body;
  else if (answer.body !== undefined && answer.body !== null) {
    payload = JSON.stringify(answer.body);
    out['content-type'] ??= 'application/json';
  }
  res.writeHead(status, out);
  res.end(req.method === 'HEAD' || status === 204 ? undefined : payload);
}
