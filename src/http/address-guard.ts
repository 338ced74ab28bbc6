/**
 * The address guard of outbound HTTP (server-side request forgery). When a URL is chosen by a
 * user (a webhook endpoint), a request without a check can be aimed at the server's own loopback
 * services, the private network, or the cloud metadata endpoint that hands out credentials.
 *
 * {@link checkUrl} refuses non-http(s) schemes and URLs with credentials, resolves the host, and
 * refuses the URL when ANY resolved address is loopback, private, link-local, CGNAT, unspecified,
 * multicast, reserved or a metadata address (IPv4-mapped and other IPv4-embedding IPv6 forms are
 * judged by the IPv4 address inside), unless the host or the address is allow-listed.
 *
 * DNS rebinding: checking a name and then letting the HTTP client resolve it again leaves a
 * window in which the name can change to 127.0.0.1. So the check returns the addresses it
 * vetted, and the delivery must connect to exactly those: pass {@link pinnedLookup} as the
 * `lookup` option of `http.request`/`https.request` (or of `net.connect`/`tls.connect`, e.g. an
 * undici `Agent({ connect: { lookup } })`). The URL's hostname stays the `Host` header and the TLS
 * server name, so certificates are still checked against the name. Check again on every attempt
 * (DNS changes between retries), and do not follow redirects (or check each `Location` the same
 * way before following it). `HttpClient` (./client.ts) does all of this when given a `guard`.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { KeelError } from '../core/errors.js';

/**
 * An allow-list entry that is neither a host, an address nor a CIDR block. Callers with an error
 * of their own for configuration (webhooks: `WebhookConfigError`) translate it.
 *
 * @example
 * ```ts
 * try { checkAllowList(['10.0.0.0/33']); } catch (e) { if (e instanceof AllowListError) console.error(e.message); }
 * ```
 */
export class AllowListError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'allow_list_invalid', status: 500 });
  }
}

/** One resolved address. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a hostname to every address it has (as `dns.lookup(host, { all: true })` does). */
export type Resolver = (
  hostname: string,
) => Promise<readonly { address: string; family: number }[]>;

/** Options of {@link checkUrl}. */
export interface CheckUrlOptions {
  /**
   * Hosts (`localhost`, `hooks.internal`, `*.test`), addresses (`127.0.0.1`, `::1`) or CIDR
   * blocks (`10.0.0.0/8`, `fd00::/8`) that may be delivered to even though they are not public.
   * For development and tests; empty by default.
   */
  allow?: readonly string[];
  /** Resolves the host; defaults to `dns.lookup(host, { all: true, verbatim: true })`. */
  resolve?: Resolver;
  /**
   * What the refusals call the request (`the ${noun} URL ...`, `${noun}s are not delivered
   * there ...`); `'outbound request'` by default, `'webhook'` for webhook deliveries.
   */
  noun?: string;
}

/** Why a URL was refused. */
export type UrlRefusal =
  'invalid_url' | 'unsupported_scheme' | 'credentials_in_url' | 'dns_failed' | 'blocked_address';

/**
 * The outcome of {@link checkUrl}.
 *
 * @example
 * ```ts
 * const checked: CheckUrlResult = await checkUrl(url);
 * if (!checked.ok) log.warn(`not delivering: ${checked.code}: ${checked.reason}`);
 * ```
 */
export type CheckUrlResult =
  | {
      ok: true;
      url: URL;
      /** The hostname as it goes in `Host` and TLS SNI (no brackets, lower case). */
      hostname: string;
      port: number;
      /** Every vetted address: connect to these and nothing else. */
      addresses: ResolvedAddress[];
    }
  | { ok: false; code: UrlRefusal; reason: string };

/** What kind of address an IP is; everything but `public` is refused unless allow-listed. */
export type AddressCategory =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'unspecified'
  | 'multicast'
  | 'metadata'
  | 'reserved';

type Range = readonly [bytes: readonly number[], prefix: number, category: AddressCategory];

// Order matters: the first match wins, so the specific metadata addresses come before the
// link-local and CGNAT blocks that contain them.
const V4_RANGES: readonly Range[] = [
  [[169, 254, 169, 254], 32, 'metadata'], // AWS, GCP, Azure, OpenStack, DigitalOcean...
  [[169, 254, 170, 2], 32, 'metadata'], // AWS ECS task metadata
  [[100, 100, 100, 200], 32, 'metadata'], // Alibaba Cloud
  [[0, 0, 0, 0], 8, 'unspecified'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[10, 0, 0, 0], 8, 'private'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 168, 0, 0], 16, 'private'],
  [[169, 254, 0, 0], 16, 'link_local'],
  [[100, 64, 0, 0], 10, 'cgnat'],
  [[192, 0, 0, 0], 24, 'reserved'], // IETF protocol assignments
  [[192, 0, 2, 0], 24, 'reserved'], // TEST-NET-1
  [[198, 18, 0, 0], 15, 'reserved'], // benchmarking
  [[198, 51, 100, 0], 24, 'reserved'], // TEST-NET-2
  [[203, 0, 113, 0], 24, 'reserved'], // TEST-NET-3
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved'], // includes 255.255.255.255
];

const V6_RANGES: readonly Range[] = [
  [[0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54], 128, 'metadata'], // AWS fd00:ec2::254
  [[...Array<number>(16).fill(0)], 128, 'unspecified'],
  [[...Array<number>(15).fill(0), 1], 128, 'loopback'],
  [[0xfc], 7, 'private'], // unique local
  [[0xfe, 0xc0], 10, 'private'], // site-local (deprecated)
  [[0xfe, 0x80], 10, 'link_local'],
  [[0xff], 8, 'multicast'],
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, 'reserved'], // discard-only
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'reserved'], // documentation
  [[0x20, 0x01, 0x00, 0x00], 32, 'reserved'], // Teredo: hides an IPv4 address
  [[0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48, 'private'], // local-use NAT64
];

/**
 * The 4 or 16 bytes of an IP address (brackets and an IPv6 zone are allowed), or undefined when
 * the text is not one.
 *
 * @example
 * ```ts
 * parseIp('::ffff:127.0.0.1'); // Uint8Array(16) [0, ..., 0xff, 0xff, 127, 0, 0, 1]
 * ```
 */
export function parseIp(text: string): Uint8Array | undefined {
  const address = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const family = isIP(address);
  if (family === 4) return Uint8Array.from(address.split('.').map(Number));
  if (family !== 6) return undefined;
  return parseV6(address.replace(/%.*$/, ''));
}

function parseV6(text: string): Uint8Array {
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tailV4 = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.split('::') as [string, string | undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const all = [...l, ...Array<number>(8 - l.length - r.length).fill(0), ...r];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  if (tailV4.length === 4) bytes.set(tailV4, 12);
  return bytes;
}

function inRange(bytes: Uint8Array, prefixBytes: readonly number[], prefix: number): boolean {
  for (let bit = 0; bit < prefix; bit += 8) {
    const mask = prefix - bit >= 8 ? 0xff : (0xff << (8 - (prefix - bit))) & 0xff;
    if (((bytes[bit / 8] ?? 0) & mask) !== ((prefixBytes[bit / 8] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
function embeddedV4(b: Uint8Array): Uint8Array | undefined {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12); // ::ffff:a.b.c.d
  if (zeros(0, 12) && !zeros(12, 16) && !(zeros(12, 15) && b[15] === 1)) return b.slice(12); // ::a.b.c.d
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) {
    return b.slice(12); // 64:ff9b::a.b.c.d
  }
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6); // 2002:aabb:ccdd::
  return undefined;
}

/**
 * Classifies an IP address. IPv6 forms that embed an IPv4 address (`::ffff:127.0.0.1`,
 * `64:ff9b::a00:1`, `2002:7f00:1::`) are classified by that IPv4 address.
 *
 * @example
 * ```ts
 * classifyAddress('169.254.169.254'); // 'metadata'
 * classifyAddress('::ffff:10.0.0.1'); // 'private'
 * classifyAddress('93.184.216.34'); // 'public'
 * ```
 */
export function classifyAddress(address: string): AddressCategory {
  const bytes = parseIp(address);
  if (bytes === undefined) throw new TypeError(`"${address}" is not an IP address`);
  if (bytes.length === 4) return classifyBytes(bytes, V4_RANGES);
  const v4 = embeddedV4(bytes);
  if (v4) return classifyBytes(v4, V4_RANGES);
  return classifyBytes(bytes, V6_RANGES);
}

function classifyBytes(bytes: Uint8Array, ranges: readonly Range[]): AddressCategory {
  for (const [prefixBytes, prefix, category] of ranges) {
    if (inRange(bytes, prefixBytes, prefix)) return category;
  }
  return 'public';
}

interface AllowList {
  hosts: string[];
  wildcards: string[];
  blocks: { bytes: Uint8Array; prefix: number }[];
}

function normalizeHost(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

function parseAllow(entries: readonly string[]): AllowList {
  const list: AllowList = { hosts: [], wildcards: [], blocks: [] };
  for (const raw of entries) {
    const entry = raw.trim();
    const slash = entry.indexOf('/');
    const base = slash < 0 ? entry : entry.slice(0, slash);
    const bytes = parseIp(base);
    if (bytes) {
      const max = bytes.length * 8;
      const prefix = slash < 0 ? max : Number(entry.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || slash === entry.length - 1) {
        throw new AllowListError(`allow-list entry "${entry}" has an invalid prefix length`);
      }
      list.blocks.push({ bytes, prefix });
    } else if (slash >= 0) {
      throw new AllowListError(`allow-list entry "${entry}" is not a CIDR block`);
    } else if (entry.startsWith('*.') && entry.length > 2) {
      list.wildcards.push(normalizeHost(entry.slice(1)));
    } else if (/^[a-z0-9.-]+$/i.test(entry)) {
      list.hosts.push(normalizeHost(entry));
    } else {
      throw new AllowListError(
        `allow-list entry "${entry}" is neither a host name, an IP address nor a CIDR block`,
      );
    }
  }
  return list;
}

/**
 * Checks an allow-list up front (at configuration time) instead of at the first request:
 * throws {@link AllowListError} naming the first entry that is neither a host, an address nor a
 * CIDR block.
 *
 * @example
 * ```ts
 * checkAllowList(['127.0.0.1', '*.test', '10.0.0.0/8']); // fine
 * checkAllowList(['10.0.0.0/33']); // throws AllowListError
 * ```
 */
export function checkAllowList(entries: readonly string[]): void {
  parseAllow(entries);
}

function hostAllowed(list: AllowList, hostname: string): boolean {
  return list.hosts.includes(hostname) || list.wildcards.some((w) => hostname.endsWith(w));
}

function addressAllowed(list: AllowList, address: string): boolean {
  const bytes = parseIp(address);
  if (!bytes) return false;
  const v4 = bytes.length === 16 ? embeddedV4(bytes) : undefined;
  return list.blocks.some(
    (b) =>
      (b.bytes.length === bytes.length && inRange(bytes, [...b.bytes], b.prefix)) ||
      (v4 !== undefined && b.bytes.length === 4 && inRange(v4, [...b.bytes], b.prefix)),
  );
}

const defaultResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

function refuse(code: UrlRefusal, reason: string): CheckUrlResult {
  return { ok: false, code, reason };
}

/**
 * Checks that a URL may be sent to, and returns the addresses to connect to. Never
 * throws for a bad URL (only for a bad allow-list): the refusal says what was wrong.
 *
 * @example
 * ```ts
 * const checked = await checkUrl(endpoint.url, { allow: config.webhooks.allow });
 * if (!checked.ok) return recordAttempt({ error: checked.reason }); // e.g. 'blocked_address'
 * https.request(checked.url, { method: 'POST', lookup: pinnedLookup(checked.addresses) });
 * ```
 */
export async function checkUrl(
  input: string | URL,
  options: CheckUrlOptions = {},
): Promise<CheckUrlResult> {
  const allow = parseAllow(options.allow ?? []);
  const noun = options.noun ?? 'outbound request';
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return refuse('invalid_url', `the ${noun} URL is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return refuse(
      'unsupported_scheme',
      `${noun}s are delivered over http or https only, not ${url.protocol.slice(0, -1)}`,
    );
  }
  if (url.username !== '' || url.password !== '') {
    return refuse(
      'credentials_in_url',
      `the ${noun} URL contains credentials (user:password@host); send them in a header instead`,
    );
  }
  const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const hostname = normalizeHost(bare);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const trustedHost = hostAllowed(allow, hostname);

  let addresses: ResolvedAddress[];
  const literal = isIP(hostname);
  if (literal !== 0) {
    addresses = [{ address: hostname, family: literal as 4 | 6 }];
  } else if ((hostname === 'localhost' || hostname.endsWith('.localhost')) && !trustedHost) {
    // RFC 6761: these names are loopback whatever a resolver says.
    return refuse(
      'blocked_address',
      `${hostname} is a loopback name; add it to the ${noun} allow-list to deliver to it in development`,
    );
  } else {
    try {
      const resolved = await (options.resolve ?? defaultResolver)(hostname);
      addresses = [];
      for (const r of resolved) {
        const family = isIP(r.address);
        if (family === 0) {
          return refuse('dns_failed', `${hostname} resolved to something that is not an address`);
        }
        if (!addresses.some((a) => a.address === r.address)) {
          addresses.push({ address: r.address, family: family as 4 | 6 });
        }
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return refuse(
        'dns_failed',
        `could not resolve ${hostname}${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
    if (addresses.length === 0) return refuse('dns_failed', `${hostname} has no addresses`);
  }

  if (!trustedHost) {
    const blocked: string[] = [];
    for (const { address } of addresses) {
      const category = classifyAddress(address);
      if (category !== 'public' && !addressAllowed(allow, address)) {
        blocked.push(`${address} (${category.replace('_', '-')})`);
      }
    }
    if (blocked.length > 0) {
      const what =
        literal !== 0
          ? `${blocked[0]} is`
          : `${hostname} resolves to ${blocked.join(', ')}, which is`;
      return refuse(
        'blocked_address',
        `${what} not a public address; ${noun}s are not delivered there unless it is on the allow-list`,
      );
    }
  }
  return { ok: true, url, hostname, port, addresses };
}

/**
 * A `lookup` function for `http.request`, `net.connect` or `tls.connect` that answers with the
 * addresses {@link checkUrl} vetted, so the connection goes exactly where the check looked and a
 * DNS answer that changed in between (DNS rebinding) has no effect.
 *
 * @example
 * ```ts
 * const checked = await checkUrl(url);
 * if (checked.ok) {
 *   https.request(checked.url, { method: 'POST', lookup: pinnedLookup(checked.addresses) }, onResponse);
 * }
 * ```
 */
export function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  const pinned = [...addresses];
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const usable =
      family === 4 || family === 6 ? pinned.filter((a) => a.family === family) : pinned;
    if (usable.length === 0) {
      const err = Object.assign(new Error(`no vetted address for ${hostname}`), {
        code: 'ENOTFOUND',
        hostname,
      });
      callback(err, '', 0);
      return;
    }
    if (options.all) {
      callback(null, usable);
    } else {
      callback(null, usable[0]!.address, usable[0]!.family);
    }
  };
}

/**
 * `dns.lookup` with a short cache and coalescing: at thousands of requests a second to one
 * host, asking the system resolver every time would queue on libuv's four threads. The
 * addresses are still judged on every request; only the lookup is reused.
 *
 * @example
 * ```ts
 * const checked = await checkUrl(url, { resolve: cachedResolver(1000) });
 * ```
 */
export function cachedResolver(ttlMs: number): Resolver {
  const cache = new Map<string, { at: number; answer: ReturnType<Resolver> }>();
  return (hostname) => {
    const now = Date.now();
    const hit = cache.get(hostname);
    if (hit && now - hit.at < ttlMs) return hit.answer;
    const answer = dnsLookup(hostname, { all: true, verbatim: true });
    cache.set(hostname, { at: now, answer });
    // A failed lookup is not cached: the next request asks again.
    answer.catch(() => cache.delete(hostname));
    if (cache.size > 10_000) cache.clear();
    return answer;
  };
}
