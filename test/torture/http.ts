/**
 * HTTP to the apps, with every answer classified the way a Jepsen history needs: `ok` (an
 * answer, whatever its status), `refused` (the connection was refused: nothing was applied) or
 * `indeterminate` (the request may or may not have been applied: reset, timeout, no process).
 */
import type { Cluster } from './cluster.js';

export type Reply =
  | { kind: 'ok'; status: number; json: any; pid: number; at: number }
  | { kind: 'refused' | 'indeterminate'; error: string; at: number };

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** `admin`: the admin API of the process instead of its ingress. */
  api?: 'ingress' | 'admin';
}

export const NO_PROCESS = 'no process serving';

export async function request(
  cluster: Cluster,
  pick: () => number,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Reply> {
  const live = cluster.live();
  if (live.length === 0) return { kind: 'refused', error: NO_PROCESS, at: Date.now() };
  const target = live[pick() % live.length]!;
  const base = options.api === 'admin' ? target.admin : target.url;
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    let json: unknown = text;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      // Not JSON: keep the text for the report.
    }
    return { kind: 'ok', status: res.status, json, pid: target.pid, at: Date.now() };
  } catch (err) {
    const code = (err as { cause?: { code?: string } }).cause?.code;
    return {
      kind: code === 'ECONNREFUSED' ? 'refused' : 'indeterminate',
      error: `${(err as Error).message}${code ? ` (${code})` : ''}`,
      at: Date.now(),
    };
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
