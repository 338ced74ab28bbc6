import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../core/errors.js';
import type { Engine } from '../../engine/engine.js';
import { receiversMount } from './receivers.js';

// Found by the HTTP fuzzer (test/fuzz): `POST /webhooks/toString` looked the receiver up on the
// receivers object, found Object.prototype.toString, and failed with a 500 instead of a 404.

describe('receiversMount', () => {
  it('answers 404 for a receiver named like an Object.prototype property', async () => {
    const mount = receiversMount(() => ({}) as Engine, {
      receivers: { stripe: { provider: 'stripe', secret: 's', route: () => null } },
    });
    for (const name of ['toString', 'constructor', 'hasOwnProperty', '__proto__', 'valueOf']) {
      const req = { method: 'POST', headers: {}, url: `/webhooks/${name}` } as IncomingMessage;
      await expect(
        mount({ req, res: {} as ServerResponse, segments: [name], query: '', closing: false }),
        name,
      ).rejects.toBeInstanceOf(NotFoundError);
    }
  });
});
