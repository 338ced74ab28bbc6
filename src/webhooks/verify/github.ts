import { createHash } from 'node:crypto';
import {
  accept,
  anyMatch,
  hmac,
  parseHex,
  readHeader,
  reject,
  requireHeader,
  secretList,
  toBuffer,
} from '../internal.js';
import type { VerifyInput, VerifyResult } from './types.js';

const HEADER = 'X-Hub-Signature-256';

/**
 * Verifies a GitHub webhook: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`,
 * keyed by the webhook secret. GitHub signs no timestamp, so there is no replay window to check:
 * deduplicate on `replayKey` (the body's SHA-256), not only on `id` (`X-GitHub-Delivery`, which
 * the signature does not cover, so a replay can carry a fresh one). The legacy SHA-1
 * `X-Hub-Signature` header is not accepted. `toleranceSeconds` and `now` are ignored.
 *
 * @example
 * ```ts
 * const result = verifyGitHub({ rawBody, headers: req.headers, secret: process.env.GITHUB_WEBHOOK_SECRET! });
 * if (result.ok && result.eventType === 'deployment_status') resolveDeployment(JSON.parse(result.body));
 * ```
 */
export function verifyGitHub(input: VerifyInput): VerifyResult {
  const secrets = secretList('github', input.secret);
  const header = requireHeader(input.headers, HEADER);
  if ('reason' in header) {
    const legacy = readHeader(input.headers, 'X-Hub-Signature').value;
    return reject(
      'github',
      legacy === undefined
        ? header.reason
        : `${header.reason}; only the legacy SHA-1 X-Hub-Signature is present, and Keel verifies SHA-256 only`,
    );
  }
  if (!header.value.startsWith('sha256=')) {
    return reject('github', `${HEADER} is malformed: expected "sha256=<64 hex digits>"`);
  }
  const candidate = parseHex(header.value.slice('sha256='.length), 32);
  if (candidate === undefined) {
    return reject('github', `${HEADER} is malformed: expected "sha256=<64 hex digits>"`);
  }
  const body = toBuffer(input.rawBody);
  const expected = secrets.map((s) => hmac('sha256', s, body));
  if (!anyMatch([candidate], expected)) {
    return reject(
      'github',
      `${HEADER} does not match the body: a wrong webhook secret, or the body was parsed or changed before verification`,
    );
  }
  // The signature covers exactly the body's bytes.
  const extra: { id?: string; eventType?: string; replayKey: string } = {
    replayKey: createHash('sha256').update(body).digest('hex'),
  };
  const delivery = readHeader(input.headers, 'X-GitHub-Delivery').value;
  const event = readHeader(input.headers, 'X-GitHub-Event').value;
  if (delivery) extra.id = delivery.trim();
  if (event) extra.eventType = event.trim();
  return accept('github', body, extra);
}
