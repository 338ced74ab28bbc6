/**
 * Header access that works the same on a fetch `Headers`, an undici/node headers object and a
 * plain record, case-insensitively.
 */

/** Any of the header shapes Node's HTTP clients hand out. */
export type HeadersLike =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | number | undefined>>;

/**
 * The value of header `name` (case-insensitive); repeated values are joined with `, `.
 *
 * @example
 * ```ts
 * getHeader({ 'Retry-After': '120' }, 'retry-after'); // '120'
 * getHeader(response.headers, 'x-ratelimit-remaining');
 * ```
 */
export function getHeader(headers: HeadersLike | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() !== wanted || v === undefined) continue;
    if (Array.isArray(v)) return v.join(', ');
    return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
  }
  return undefined;
}

/**
 * A copy of `headers` with every name in lower case (later duplicates win), which is how the
 * signers return headers so that `Authorization` and `authorization` can never both be sent.
 *
 * @example
 * ```ts
 * lowerCaseHeaders({ 'Content-Type': 'application/json' }); // { 'content-type': 'application/json' }
 * ```
 */
export function lowerCaseHeaders(
  headers: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  const keys = Object.keys(headers);
  for (let i = 0; i < keys.length; i++) out[keys[i]!.toLowerCase()] = headers[keys[i]!]!;
  return out;
}
