/** What every command gets: where to send requests and how to write answers. */
import { readFileSync } from 'node:fs';
import { parseDuration } from '../core/duration.js';
import { usage } from './errors.js';
import type { Target } from './http.js';
import { createOutput, type Output } from './output.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9070';
export const DEFAULT_INGRESS_URL = 'http://127.0.0.1:9080';

/** The global options, as commander parsed them (env already applied where it can). */
export interface GlobalOptions {
  url?: string;
  ingress?: string;
  token?: string;
  apiKey?: string;
  json?: boolean;
}

export interface Ctx {
  out: Output;
  target: Target;
}

export function contextOf(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): Ctx {
  const out = createOutput(opts.json === true);
  const token = opts.token ?? env.KEEL_TOKEN ?? env.KEEL_ADMIN_TOKEN;
  const apiKey = opts.apiKey ?? env.KEEL_API_KEY;
  return {
    out,
    target: {
      admin: baseUrl(opts.url ?? env.KEEL_ADMIN_URL ?? DEFAULT_ADMIN_URL, '--url (KEEL_ADMIN_URL)'),
      ingress: baseUrl(
        opts.ingress ?? env.KEEL_INGRESS_URL ?? DEFAULT_INGRESS_URL,
        '--ingress (KEEL_INGRESS_URL)',
      ),
      ...(token !== undefined && token !== '' ? { token } : {}),
      ...(apiKey !== undefined && apiKey !== '' ? { apiKey } : {}),
    },
  };
}

function baseUrl(text: string, what: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw usage(`${what} "${text}" is not a URL: give e.g. http://127.0.0.1:9070`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw usage(`${what} "${text}" must be an http:// or https:// URL`);
  return u.toString().replace(/\/+$/, '');
}

/**
 * A point in time for `--since`/`--until`: ISO 8601, epoch milliseconds, or a duration back
 * from now (`15m`, `2h`, `7d`). Returned as ISO, which the admin API takes.
 */
export function pointInTime(text: string, what: string, now = Date.now()): string {
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return new Date(t).toISOString();
  } else if (/^\d{10,}$/.test(text)) {
    return new Date(Number(text)).toISOString();
  } else {
    try {
      return new Date(now - parseDuration(text)).toISOString();
    } catch {
      // the usage error below says what is accepted
    }
  }
  throw usage(
    `${what} "${text}" is not a time: give an ISO time (2026-01-31T12:00:00Z), epoch milliseconds, or a duration back from now (15m, 2h, 7d)`,
  );
}

/**
 * A JSON argument (`'{"a":1}'`, `'"text"'`, `42`); `-` reads it from stdin, `@file` from a file.
 */
export function jsonArg(text: string, what: string): unknown {
  const source =
    text === '-'
      ? readFileSync(0, 'utf8')
      : text.startsWith('@')
        ? readFileText(text.slice(1), what)
        : text;
  try {
    return JSON.parse(source);
  } catch (err) {
    throw usage(
      `${what} is not JSON (${(err as Error).message}): quote strings as JSON, e.g. '"Ada"', or give '{"name":"Ada"}'`,
    );
  }
}

function readFileText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw usage(`cannot read ${what} from ${path}: ${(err as Error).message}`);
  }
}

/** A positive whole number option. */
export function positiveInt(text: string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= max))
    throw usage(`${what} "${text}" must be a whole number from 1 to ${max}`);
  return n;
}
