/**
 * The ceiling: the bench handlers on a bare `node:http` server with no engine and no
 * durability, parsing and answering JSON the way the ingress does (read the body, JSON.parse,
 * JSON.stringify with an explicit content-length). Whatever Keel costs above this is the
 * price of the engine and the journal. Same startup contract as bench/server.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const JSON_TYPE = 'application/json; charset=utf-8';

async function step(n: number): Promise<number> {
  return n + 1;
}

async function bench3(n: number): Promise<number> {
  const a = await step(n);
  const b = await step(a);
  return step(b);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () =>
      resolve(
        chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'),
      ),
    );
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = value === undefined ? 'null' : JSON.stringify(value);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  if (req.method !== 'POST')
    return send(res, 405, { code: 'method_not_allowed', message: 'POST only' });
  const segs = url.split('/');
  const text = await readBody(req);
  const input: unknown = text.length === 0 ? undefined : JSON.parse(text);
  if (segs[1] === 'Noop' && segs[2] === 'run' && segs.length === 3) return send(res, 200, input);
  if (segs[1] === 'Bench3Svc' && segs[2] === 'run' && segs.length === 3)
    return send(res, 200, await bench3(input as number));
  if (segs[1] === 'Bench3' && segs[3] === 'run' && segs.length === 4)
    return send(res, 200, await bench3(input as number));
  send(res, 404, { code: 'not_found', message: `no route ${url}` });
}

const server = createServer({ noDelay: true, keepAliveTimeout: 65_000 }, (req, res) => {
  handle(req, res).catch((err: unknown) =>
    send(res, 500, { code: 'internal', message: String(err) }),
  );
});
server.listen(Number(process.env.KEEL_PORT ?? 0), process.env.KEEL_HOST ?? '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  process.stdout.write(`KEEL_BENCH_READY http://127.0.0.1:${port}\n`);
});

process.on('message', (msg: unknown) => {
  if (msg === 'stats') process.send?.({ stats: {} });
});
process.on('disconnect', () => process.exit(1));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
