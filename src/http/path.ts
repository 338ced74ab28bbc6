import { KeelError } from '../core/errors.js';

/**
 * Splits `/a/b%2Fc/` into `['a', 'b/c']`: one trailing slash is tolerated, segments are
 * URL-decoded (only when they contain `%`, the common case costs no decode), and an empty
 * segment is kept so `/Counter//add` reaches the missing-key answer rather than a 404.
 */
export function splitPath(path: string): string[] {
  let end = path.length;
  if (end > 1 && path.charCodeAt(end - 1) === 47 /* / */) end--;
  const raw = path.slice(1, end);
  if (raw.length === 0) return [];
  const segs = raw.split('/');
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s.includes('%')) {
      try {
        segs[i] = decodeURIComponent(s);
      } catch {
        throw new KeelError(
          `the path segment "${s}" is not valid URL encoding; encode keys with encodeURIComponent`,
          {
            code: 'invalid_path',
            status: 400,
          },
        );
      }
    }
  }
  return segs;
}
