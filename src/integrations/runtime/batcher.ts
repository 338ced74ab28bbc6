/**
 * Batching for operations declared `batch: true`: calls with the same method, path and query are
 * collected for at most `maxDelay` (or until `maxBatchSize` are waiting) and sent as one request
 * whose JSON body is the array of the calls' bodies. When the answer is an array of the same
 * length, call i gets element i; otherwise every call gets the whole answer. A failure fails
 * every call of the batch.
 *
 * A batch carries an idempotency key derived from its members' keys (a hash of them, in order),
 * so the same batch sent again after a failure is recognised by the provider; a batch re-formed
 * differently after a crash is a different request, and gets a different key.
 */
import { createHash } from 'node:crypto';
import type { CallControl, CallResult } from './call.js';
import type { BuiltRequest } from './request.js';

interface Member {
  req: BuiltRequest;
  key: string;
  resolve: (r: CallResult) => void;
}

/**
 * Collects calls and sends them together.
 *
 * @example
 * ```ts
 * const batcher = new Batcher({ maxBatchSize: 100, maxDelayMs: 5000 }, 'idempotency-key', (req, ctl) => attempts(s, h, op, req, ctl));
 * const result = await batcher.add(req, ctl);
 * ```
 */
export class Batcher {
  private members: Member[] = [];
  private cancelTimer: (() => void) | undefined;

  constructor(
    private readonly policy: { maxBatchSize: number; maxDelayMs: number },
    /** The idempotency header (lower case), when the operation sends one. */
    private readonly keyHeader: string | undefined,
    private readonly send: (req: BuiltRequest, ctl: CallControl) => Promise<CallResult>,
    /** Starts the `maxDelay` timer; the runtime passes its clock's, so a fake clock drives it. */
    private readonly setTimer: (ms: number, fn: () => void) => () => void = (ms, fn) => {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    },
  ) {}

  add(req: BuiltRequest, ctl: CallControl): Promise<CallResult> {
    return new Promise<CallResult>((resolve) => {
      this.members.push({ req, key: ctl.idempotencyKey, resolve });
      if (this.members.length >= this.policy.maxBatchSize) this.flush();
      else this.cancelTimer ??= this.setTimer(this.policy.maxDelayMs, () => this.flush());
    });
  }

  /** Sends what is waiting now. */
  flush(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const batch = this.members;
    this.members = [];
    if (batch.length === 0) return;
    const first = batch[0]!.req;
    const bodies = batch.map((m) => m.req.bodyValue ?? null);
    const headers: Record<string, string> = {
      ...first.headers,
      'content-type': 'application/json',
    };
    const key = createHash('sha256')
      .update(batch.map((m) => m.key).join('\n'))
      .digest('hex')
      .slice(0, 40);
    if (this.keyHeader !== undefined) headers[this.keyHeader] = `batch-${key}`;
    const req: BuiltRequest = {
      ...first,
      headers,
      body: JSON.stringify(bodies),
      bodyValue: bodies,
    };
    void this.send(req, {
      idempotencyKey: `batch-${key}`,
      retriesDone: 0,
      maxInlineWaitMs: Infinity,
    })
      .catch((err: unknown): CallResult => ({
        ok: false,
        failure: {
          integration: '',
          operation: '',
          reason: 'retries-exhausted',
          message: err instanceof Error ? err.message : String(err),
          attempts: 0,
        },
      }))
      .then((result) => {
        const parts =
          result.ok && Array.isArray(result.data) && result.data.length === batch.length
            ? (result.data as unknown[])
            : undefined;
        batch.forEach((m, i) =>
          m.resolve(parts === undefined || !result.ok ? result : { ...result, data: parts[i] }),
        );
      });
  }
}
