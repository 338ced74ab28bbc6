/**
 * The downstream service that declarative flows' `api` steps call (the integration `Downstream`
 * of test/fixtures/torture-app.ts, at `TORTURE_DOWNSTREAM`). It runs in the harness process, so
 * no kill or stall of an app reaches it: every request that arrives is logged as
 * `api <log id> <Idempotency-Key>` (and `ack <prev>` when it carries the previous step's
 * output), which is what a real provider would see. The checker holds these lines to what
 * docs/flows.md promises of an `api` step: it ran (at least once) in every answered run, and
 * every request of one step carried the same key, `{invocationId}:{step id}`, the run's own.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dLogId } from './dflow.js';
import { record } from './program.js';

export class Downstream {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(logFile: string): Promise<Downstream> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: { tag?: unknown; step?: unknown; prev?: unknown } = {};
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        } catch {
          // Answered 400 below.
        }
        if (typeof body.tag !== 'string' || typeof body.step !== 'string') {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'body needs { tag, step }' }));
          return;
        }
        const id = dLogId(body.tag, body.step);
        if (typeof body.prev === 'string' && body.prev.startsWith('D/'))
          record(logFile, 'ack', body.prev);
        const key = req.headers['idempotency-key'];
        record(logFile, 'api', id, typeof key === 'string' && key !== '' ? key : '-');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    return new Downstream(server, `http://127.0.0.1:${port}`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
