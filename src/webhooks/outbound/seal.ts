/**
 * Seals of internal invocation inputs. The delivery service is an ordinary Keel service, so the
 * ingress would run `POST /keel.webhooks/deliver` for anyone who can reach it: without a seal,
 * that would let a caller send any body signed with an endpoint's secret. Every input Keel
 * creates carries an HMAC under a key kept in the store (shared by every process of the app,
 * made once); a handler refuses an input whose seal does not match.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TerminalError } from '../../core/errors.js';
import type { Store } from '../../store/types.js';
import { SCOPES } from './types.js';

const KEY = 'seal-key';

/** Reads the app's seal key, creating it on first use (compare-and-set: one key per store). */
export async function loadSealKey(store: Store): Promise<Buffer> {
  for (let i = 0; i < 3; i++) {
    const row = await store.getKv(SCOPES.internal, KEY);
    if (row) return Buffer.from(row.value as string, 'base64');
    const fresh = randomBytes(32).toString('base64');
    const [r] = await store.write([
      { op: 'kv.put', scope: SCOPES.internal, key: KEY, value: fresh, expectVersion: 0 },
    ]);
    if ((r as { ok: boolean }).ok) return Buffer.from(fresh, 'base64');
  }
  throw new Error('could not read or create the webhooks seal key in the store');
}

export class Sealer {
  constructor(private readonly key: Buffer) {}

  seal(...parts: Array<string | number | undefined>): string {
    // Length-prefixed, so no two different part lists hash the same text. One string and one
    // update (each update is a call into native code).
    let text = '';
    for (const p of parts) {
      if (p === undefined) text += '-:';
      else {
        const part = String(p);
        text += `${part.length}:${part}`;
      }
    }
    return createHmac('sha256', this.key).update(text).digest('base64url').slice(0, 22);
  }

  /** Throws a terminal 403 when `seal` is not the seal of `parts`. */
  check(seal: unknown, ...parts: Array<string | number | undefined>): void {
    const expected = Buffer.from(this.seal(...parts));
    const given = typeof seal === 'string' ? Buffer.from(seal) : undefined;
    // Seals have a fixed length, so comparing lengths first leaks nothing.
    if (!given || given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new TerminalError(
        'this invocation input was not created by Keel webhooks; the keel.webhooks service cannot be called directly',
        { code: 'forbidden', status: 403 },
      );
  }
}
