import type { Rand } from './random.js';

/** Random values for paths, headers and bodies, biased towards the ones that break parsers. */

const SAFE = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
const NASTY_SEGMENTS = [
  '..',
  '.',
  '%2e%2e',
  '%2E%2E%2F',
  '%2F',
  'a%2Fb',
  '%00',
  'a%00b',
  '%',
  '%zz',
  '%e0%a4%a',
  '%C0%AF',
  '%ff%fe',
  '%25',
  '%20',
  '%F0%9F%98%80',
  'caf%C3%A9',
  '%ED%A0%80',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'toString',
  'send',
  'health',
  'invocations',
  'awakeables',
  'webhooks',
  'resolve',
  'reject',
  'attach',
  'output',
];

const UNICODE = [
  'é',
  '日本語',
  '😀',
  '\u0000',
  '\u202e',
  '\ufeff',
  '\ud800',
  '\udfff',
  '\u2028',
  'Ω',
  '\\',
  '"',
  "'",
  '<script>',
  '${x}',
  '\r\n',
];

/** Percent-encodes every byte of the UTF-8 form but unreserved ones (lone surrogates become U+FFFD). */
export function pct(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A path segment: plain, encoded, traversal, prototype names, or very long. */
export function segment(r: Rand): string {
  return r.weighted<() => string>([
    [5, () => r.chars(r.int(1, 12), SAFE)],
    [4, () => r.pick(NASTY_SEGMENTS)],
    [2, () => pct(unicodeText(r, r.int(1, 6)))],
    [1, () => r.chars(r.int(200, 9000), SAFE)],
    [1, () => ''],
  ])();
}

/** Text mixing ASCII and the unicode that breaks things (NUL, lone surrogates, RTL marks). */
export function unicodeText(r: Rand, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += r.chance(0.5) ? r.chars(1, SAFE) : r.pick(UNICODE);
  return s;
}

/** A key for an object or workflow: mostly from a small set, so requests meet on the same keys. */
export function key(r: Rand): string {
  return r.chance(0.8) ? `k${r.int(0, 20)}` : pct(unicodeText(r, r.int(1, 8)));
}

/** Any JSON value, up to `depth` levels. */
export function jsonValue(r: Rand, depth = 3): unknown {
  const kind = r.int(0, depth > 0 ? 7 : 4);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 5, 42, -0]);
    case 3:
      return unicodeText(r, r.int(0, 10));
    case 4:
      return r.chars(r.int(0, 5), SAFE);
    case 5:
    case 6: {
      const o: Record<string, unknown> = {};
      const n = r.int(0, 4);
      for (let i = 0; i < n; i++) {
        const k = r.pick([
          '__proto__',
          'constructor',
          'item',
          'orderId',
          'message',
          unicodeText(r, 3),
        ]);
        o[k] = jsonValue(r, depth - 1);
      }
      return o;
    }
    default:
      return Array.from({ length: r.int(0, 4) }, () => jsonValue(r, depth - 1));
  }
}

/** A body that must be refused whatever the handler: not JSON, not UTF-8, too large, too deep. */
export function badBody(r: Rand, limit: number): Buffer {
  return r.weighted<() => Buffer>([
    [
      4,
      () =>
        Buffer.from(
          r.pick(['{', '[1,', '{"a":}', 'nul', "{'a':1}", '"\\x"', '01', 'NaN', '{"a":1}}', ']']),
        ),
    ],
    [2, () => Buffer.from(`"${unicodeText(r, r.int(1, 20)).replace(/["\\]/g, '')}`)],
    [1, () => Buffer.from(`"\\u${r.chars(r.int(0, 3), '0123456789abcdefg')}"`)],
    [2, () => r.bytes(r.int(1, 200))],
    [1, () => Buffer.from('\u0000'.repeat(r.int(1, 64)))],
    [1, () => deepJson(r.pick([100, 1_000, 10_000, 100_000]), r.chance(0.5))],
    [1, () => Buffer.alloc(limit + r.int(1, 4096), 0x61)],
    [1, () => Buffer.from(`{"k":"${'x'.repeat(r.int(1000, 200_000))}"}`)],
    [1, () => Buffer.from('\ufeff{}')],
    [1, () => Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28])],
  ])();
}

/** `[[[...]]]` or `{"a":{"a":...}}`, `depth` levels: parsers and recursive walks meet their stack. */
export function deepJson(depth: number, objects: boolean): Buffer {
  return Buffer.from(
    objects
      ? '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
      : '['.repeat(depth) + ']'.repeat(depth),
  );
}

export const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/xml',
  'application/jsonx',
  'application/',
  'json',
  ';',
  '',
  'application/json;;;charset',
  '*/*',
];

/** Delays for `?delay=`: the odd ones are invalid (or should be). */
export function oddDelay(r: Rand): string {
  return r.pick([
    'abc',
    '-1s',
    '-5',
    '1x',
    '',
    '1e309',
    'Infinity',
    'NaN',
    '99999999999d',
    '9'.repeat(400),
    '1'.repeat(20) + 'ms',
    'P',
    'PT',
    'P1Y',
    '10s10s',
    '1.5.5s',
    '0x10',
    ' 1s',
    '1s ',
    '%00',
    '10000000000000d',
  ]);
}
