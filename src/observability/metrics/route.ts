import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeelError } from '../../core/errors.js';
import { MethodNotAllowedError, sendText } from '../../http/respond.js';
import { METRICS_CONTENT_TYPE, type EngineMetrics } from './engine-metrics.js';

/** `GET /metrics` when metrics are off. */
export class MetricsDisabledError extends KeelError {
  constructor() {
    super(
      'metrics are off for this engine (metrics: false, or KEEL_METRICS=0 in its environment); ' +
        'start it without either to serve GET /metrics',
      { code: 'metrics_disabled', status: 404 },
    );
  }
}

/**
 * The admin API's `GET /metrics`: the engine's metrics in Prometheus text format 0.0.4. Reads
 * need no admin role, so the viewer's token may scrape. Returns false for any other path.
 *
 * @example
 * ```ts
 * if (await answerMetrics(kernelOf(engine).metrics, req, res, ['metrics'], close)) return;
 * ```
 */
export async function answerMetrics(
  metrics: EngineMetrics | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  segments: readonly string[],
  close: readonly string[] | undefined,
): Promise<boolean> {
  if (segments.length !== 1 || segments[0] !== 'metrics') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD')
    throw new MethodNotAllowedError(req.method ?? '?', 'GET');
  if (metrics === undefined) throw new MetricsDisabledError();
  const text = await metrics.text();
  sendText(res, 200, text, ['content-type', METRICS_CONTENT_TYPE, ...(close ?? [])]);
  return true;
}
