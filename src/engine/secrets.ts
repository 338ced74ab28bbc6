/**
 * The store's awakeable secret: the HMAC key awakeable ids are derived under (see
 * `awakeableIdFor`). It lives in the store, so every process sharing a database derives the same
 * id for the same journal entry, and a restart keeps handing out the ids it handed out before.
 * Whoever can read the store can complete its awakeables anyway, so the store is the right
 * place. It is never logged, and no error message carries it.
 */
import { randomBytes } from 'node:crypto';
import { KeelError } from '../core/errors.js';
import type { Store } from '../store/types.js';

/** The key-value scope of Keel's own secrets (not listed by any API). */
export const SECRET_SCOPE = 'keel.secret';
const AWAKEABLE_KEY = 'awakeable';
const SECRET_BYTES = 32;

/**
 * Reads the store's awakeable secret, creating it on first use. Processes starting at once
 * race with compare-and-set (`expectVersion: 0`): one secret per store, the losers read the
 * winner's. A stored value that is not a secret is refused rather than replaced, since
 * replacing it would orphan every awakeable id already handed out.
 */
export async function loadAwakeableSecret(store: Store): Promise<Buffer> {
  // Two rounds suffice (absent, lost the race, read the winner's); a third tolerates a secret
  // deleted by hand in between.
  for (let i = 0; i < 3; i++) {
    const row = await store.getKv(SECRET_SCOPE, AWAKEABLE_KEY);
    if (row) return decode(row.value);
    const fresh = randomBytes(SECRET_BYTES);
    const [result] = await store.write([
      {
        op: 'kv.put',
        scope: SECRET_SCOPE,
        key: AWAKEABLE_KEY,
        value: fresh.toString('base64'),
        expectVersion: 0,
      },
    ]);
    if ((result as { ok: boolean } | undefined)?.ok) return fresh;
  }
  throw new KeelError(
    `could not read or create the awakeable secret (key-value record ${SECRET_SCOPE}/${AWAKEABLE_KEY}) in the store; check that the store is writable and start the engine again`,
    { code: 'secret_unavailable', status: 503 },
  );
}

function decode(value: unknown): Buffer {
  const secret = typeof value === 'string' ? Buffer.from(value, 'base64') : undefined;
  if (secret?.length === SECRET_BYTES) return secret;
  throw new KeelError(
    `the awakeable secret stored in key-value record ${SECRET_SCOPE}/${AWAKEABLE_KEY} is damaged (not ${SECRET_BYTES} base64 bytes); restore it from a backup (deleting it orphans every awakeable id handed out)`,
    { code: 'secret_damaged', status: 500 },
  );
}
