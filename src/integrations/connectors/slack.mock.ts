/**
 * A Slack incoming webhook in-process: `ok` for a valid message, Slack's error words otherwise.
 * Failures on demand: `channel: '#archived'` → 410 `channel_is_archived`, a channel named
 * `missing…` → 404 `channel_not_found`, and `failNext(1, 429)` → `rate_limited` with
 * `Retry-After: 1`.
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import { bodyObject, connectorMock, isMissing, type ConnectorMock } from './mock-kit.js';

/**
 * A Slack webhook mock. Every accepted message is in `requests`.
 *
 * @example
 * ```ts
 * const mock = slackMock();
 * const alerts = slack({ mock, mockMode: true });
 * // ... later, in a test:
 * expect(mock.requests.map((r) => (r.body as { text: string }).text)).toContain('Order 42 paid');
 * ```
 */
export function slackMock(): ConnectorMock {
  return connectorMock(
    () => answerSlack,
    (status) =>
      status === 429
        ? text(429, 'rate_limited', { 'retry-after': '1' })
        : text(status, status >= 500 ? 'rollup_error' : 'invalid_payload'),
  );
}

function answerSlack(req: MockRequest): MockResponse {
  if (req.method !== 'POST') return text(405, 'invalid_request');
  if (typeof req.body !== 'object' || req.body === null) return text(400, 'invalid_payload');
  const m = bodyObject(req.body);
  const hasText = typeof m.text === 'string' && m.text.trim() !== '';
  if (m.blocks !== undefined && !Array.isArray(m.blocks)) return text(400, 'invalid_blocks');
  if (m.attachments !== undefined && !Array.isArray(m.attachments)) {
    return text(400, 'invalid_attachments');
  }
  const hasBlocks = Array.isArray(m.blocks) && m.blocks.length > 0;
  const hasAttachments = Array.isArray(m.attachments) && m.attachments.length > 0;
  if (!hasText && !hasBlocks && !hasAttachments) return text(400, 'no_text');
  if (
    hasBlocks &&
    (m.blocks as unknown[]).some((b) => typeof (b as { type?: unknown })?.type !== 'string')
  ) {
    return text(400, 'invalid_blocks');
  }
  const channel = typeof m.channel === 'string' ? m.channel.replace(/^[#@]/, '') : undefined;
  if (channel === 'archived') return text(410, 'channel_is_archived');
  if (isMissing(channel)) return text(404, 'channel_not_found');
  return text(200, 'ok');
}

function text(status: number, body: string, headers: Record<string, string> = {}): MockResponse {
  return { status, headers: { 'content-type': 'text/html', ...headers }, body };
}
