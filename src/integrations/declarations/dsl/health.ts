/**
 * The `health_check` field of an integration:
 *
 * ```
 * health_check: "/health" every 30s        // or just "/health" (every 30s)
 * health_check: { path: "/health", every: 30s }
 * ```
 *
 * In JSON: `"health_check": "/health"` or `{ "path": "/health", "interval": "30s" }`. The flat
 * fields `health_check_path: "/health"` and `health_check_interval: 30s` (the databases' name for
 * their interval) are read too. It becomes `healthCheckPath` / `healthCheckInterval`, which
 * `integration()` validates.
 */
import type { Duration } from '../../../core/duration.js';
import type { IntegrationConfig } from '../config.js';
import { Cursor, type Reader } from './reader.js';
import type { Field, Value } from './syntax.js';

/**
 * Reads `health_check`.
 *
 * @example
 * ```ts
 * readHealthCheck(reader, field.value); // { path: '/health', interval: 30000 }
 * ```
 */
export function readHealthCheck(r: Reader, v: Value): { path: string; interval?: Duration } {
  const label = 'health_check';
  const only =
    v.phrases.length === 1 && v.phrases[0]!.terms.length === 1
      ? v.phrases[0]!.terms[0]!
      : undefined;
  if (only?.kind === 'block') {
    const fields = r.fields(only, ['path', 'every', 'interval'], label);
    if (fields.has('every') && fields.has('interval')) {
      r.fail(
        fields.get('interval')!.keyPos,
        `${r.ctx(label)}give either every or interval, not both`,
      );
    }
    const p = fields.get('path');
    if (p === undefined) r.fail(only.end, `${r.ctx(label)}path is missing: write path: "/health"`);
    const pathNode = r.one(p.value, `${label}.path`);
    const out: { path: string; interval?: Duration } = {
      path: r.string(pathNode, `${label}.path`),
    };
    r.origin('healthCheckPath', pathNode.pos, `${label}.path`);
    const every = fields.get('every') ?? fields.get('interval');
    if (every !== undefined) {
      const node = r.one(every.value, `${label}.${normalize(every.key)}`);
      out.interval = r.duration(node, `${label}.${normalize(every.key)}`);
      r.origin('healthCheckInterval', node.pos, label);
    }
    return out;
  }
  if (v.phrases.length > 1) {
    r.fail(v.phrases[1]!.pos, `${r.ctx(label)}expected '"/health" every 30s' alone`);
  }
  const c = new Cursor(r, v.phrases[0]!, label);
  const pathNode = c.node(`a path in double quotes, as in '"/health" every 30s'`);
  const out: { path: string; interval?: Duration } = { path: r.string(pathNode, label) };
  r.origin('healthCheckPath', pathNode.pos, label);
  if (c.optional('every')) {
    out.interval = c.duration("'every'");
    r.origin('healthCheckInterval', c.lastPos, label);
  }
  c.end(`'"/health" every 30s'`);
  return out;
}

function normalize(key: string): string {
  return key.toLowerCase();
}

/**
 * Reads `health_check_path` or `health_check_interval` into `config` (refused next to
 * `health_check`, which says both).
 *
 * @example
 * ```ts
 * readHealthCheckField(reader, 'health_check_interval', field, false, config); // config.healthCheckInterval = 30000
 * ```
 */
export function readHealthCheckField(
  r: Reader,
  key: 'health_check_path' | 'health_check_interval',
  f: Field,
  withHealthCheck: boolean,
  config: {
    healthCheckPath?: IntegrationConfig['healthCheckPath'];
    healthCheckInterval?: Duration;
  },
): void {
  if (withHealthCheck) {
    r.fail(f.keyPos, `${r.ctx(key)}give either health_check or ${key}, not both`);
  }
  const node = r.one(f.value, key);
  if (key === 'health_check_path') {
    config.healthCheckPath = r.string(node, key);
    r.origin('healthCheckPath', node.pos, key);
  } else {
    config.healthCheckInterval = r.duration(node, key);
    r.origin('healthCheckInterval', node.pos, key);
  }
}
