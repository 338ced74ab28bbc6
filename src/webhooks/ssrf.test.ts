import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebhookConfigError } from './errors.js';
import {
  checkUrl,
  classifyAddress,
  pinnedLookup,
  type ResolvedAddress,
  type Resolver,
} from './ssrf.js';

/** A fake DNS: a fixed table, and a record of what was asked. */
function fakeDns(table: Record<string, string[]>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string) => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (!addresses)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { asked });
}

const dns = fakeDns({
  'hooks.example.com': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
  'loopback.example': ['127.0.0.1'],
  'private.example': ['10.0.0.1'],
  'metadata.example': ['169.254.169.254'],
  'mixed.example': ['93.184.216.34', '10.1.2.3'],
  'v6-loopback.example': ['::1'],
  'mapped.example': ['::ffff:127.0.0.1'],
  'aws-v6-metadata.example': ['fd00:ec2::254'],
  'empty.example': [],
});

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.1.1', 'link_local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['ff02::1', 'multicast'],
    ['fd00:ec2::254', 'metadata'],
    ['2001:db8::1', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    // IPv4 inside IPv6 is judged by the IPv4 address.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'private'],
    ['64:ff9b::808:808', 'public'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:a9fe:a9fe::1', 'metadata'],
  ])('%s is %s', (address, category) => {
    expect(classifyAddress(address)).toBe(category);
  });

  it('throws for text that is not an address', () => {
    expect(() => classifyAddress('example.com')).toThrow(TypeError);
  });
});

describe('checkUrl', () => {
  it('accepts a public host and returns every vetted address to pin', async () => {
    const result = await checkUrl('https://hooks.example.com/orders', { resolve: dns });
    expect(result).toMatchObject({
      ok: true,
      hostname: 'hooks.example.com',
      port: 443,
      addresses: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
      ],
    });
  });

  it.each([
    '127.0.0.1',
    '10.0.0.1',
    '169.254.169.254',
    '[::1]',
    '[::ffff:127.0.0.1]',
    '[fd00:ec2::254]',
    '0.0.0.0',
  ])('refuses the literal address %s', async (host) => {
    const result = await checkUrl(`http://${host}:8080/hook`, { resolve: dns });
    expect(result).toMatchObject({ ok: false, code: 'blocked_address' });
  });

  it('refuses IPv4 literals in the forms URL parsers normalise (decimal, hex, short)', async () => {
    for (const host of ['2130706433', '0x7f.1', '127.1', '0177.0.0.1']) {
      const result = await checkUrl(`http://${host}/`, { resolve: dns });
      expect(result).toMatchObject({ ok: false, code: 'blocked_address' });
      if (!result.ok)
        expect(result.reason).toMatch(/^127\.0\.0\.1 \(loopback\) is not a public address/);
    }
  });

  it.each([
    ['loopback.example', /127\.0\.0\.1 \(loopback\)/],
    ['private.example', /10\.0\.0\.1 \(private\)/],
    ['metadata.example', /169\.254\.169\.254 \(metadata\)/],
    ['v6-loopback.example', /::1 \(loopback\)/],
    ['mapped.example', /::ffff:127\.0\.0\.1 \(loopback\)/],
    ['aws-v6-metadata.example', /fd00:ec2::254 \(metadata\)/],
  ])('refuses %s, a hostname resolving to a blocked address', async (host, reason) => {
    const result = await checkUrl(`https://${host}/hook`, { resolve: dns });
    expect(result).toMatchObject({
      ok: false,
      code: 'blocked_address',
      reason: expect.stringMatching(reason),
    });
  });

  it('refuses a host when any one of its addresses is blocked', async () => {
    const result = await checkUrl('https://mixed.example/', { resolve: dns });
    expect(result).toMatchObject({
      ok: false,
      code: 'blocked_address',
      reason: expect.stringMatching(/10\.1\.2\.3 \(private\)/),
    });
    if (!result.ok) expect(result.reason).not.toMatch(/93\.184/);
  });

  it('refuses localhost names without asking DNS', async () => {
    const resolver = fakeDns({ localhost: ['93.184.216.34'], 'app.localhost': ['93.184.216.34'] });
    for (const host of ['localhost', 'LOCALHOST.', 'app.localhost']) {
      expect(await checkUrl(`http://${host}:3000/`, { resolve: resolver })).toMatchObject({
        ok: false,
        code: 'blocked_address',
      });
    }
    expect(resolver.asked).toEqual([]);
  });

  it('refuses other schemes and URLs with credentials, without echoing the credentials', async () => {
    for (const url of [
      'ftp://hooks.example.com/',
      'file:///etc/passwd',
      'gopher://hooks.example.com/',
      'javascript:alert(1)',
    ]) {
      expect(await checkUrl(url, { resolve: dns })).toMatchObject({
        ok: false,
        code: 'unsupported_scheme',
      });
    }
    const creds = await checkUrl('https://admin:hunter2@hooks.example.com/', { resolve: dns });
    expect(creds).toMatchObject({ ok: false, code: 'credentials_in_url' });
    if (!creds.ok) expect(creds.reason).not.toContain('hunter2');
    expect(await checkUrl('not a url', { resolve: dns })).toMatchObject({
      ok: false,
      code: 'invalid_url',
    });
  });

  it('reports DNS failures and hosts without addresses', async () => {
    expect(await checkUrl('https://nowhere.example/', { resolve: dns })).toMatchObject({
      ok: false,
      code: 'dns_failed',
      reason: 'could not resolve nowhere.example (ENOTFOUND)',
    });
    expect(await checkUrl('https://empty.example/', { resolve: dns })).toMatchObject({
      ok: false,
      code: 'dns_failed',
    });
  });

  describe('allow-list', () => {
    it('allows an address or CIDR block, and only that', async () => {
      expect(
        await checkUrl('http://127.0.0.1:9999/hook', { allow: ['127.0.0.1'], resolve: dns }),
      ).toMatchObject({
        ok: true,
        port: 9999,
        addresses: [{ address: '127.0.0.1', family: 4 }],
      });
      expect((await checkUrl('http://127.0.0.2/', { allow: ['127.0.0.1'], resolve: dns })).ok).toBe(
        false,
      );
      expect(
        (await checkUrl('http://127.0.0.2/', { allow: ['127.0.0.0/8'], resolve: dns })).ok,
      ).toBe(true);
      expect(
        (await checkUrl('https://private.example/', { allow: ['10.0.0.0/8'], resolve: dns })).ok,
      ).toBe(true);
      expect(
        (await checkUrl('https://metadata.example/', { allow: ['10.0.0.0/8'], resolve: dns })).ok,
      ).toBe(false);
    });

    it('matches IPv4 blocks against IPv4-mapped IPv6 addresses, and IPv6 blocks', async () => {
      expect(
        (await checkUrl('https://mapped.example/', { allow: ['127.0.0.0/8'], resolve: dns })).ok,
      ).toBe(true);
      expect((await checkUrl('http://[::1]/', { allow: ['::1/128'], resolve: dns })).ok).toBe(true);
      expect(
        (await checkUrl('https://aws-v6-metadata.example/', { allow: ['fd00::/8'], resolve: dns }))
          .ok,
      ).toBe(true);
    });

    it('allows a host name (and its subdomains with *.), whatever it resolves to', async () => {
      expect(
        (
          await checkUrl('http://localhost:3000/', {
            allow: ['localhost'],
            resolve: fakeDns({ localhost: ['127.0.0.1'] }),
          })
        ).ok,
      ).toBe(true);
      expect(
        (await checkUrl('https://loopback.example/', { allow: ['LOOPBACK.example'], resolve: dns }))
          .ok,
      ).toBe(true);
      expect(
        (await checkUrl('https://loopback.example/', { allow: ['*.example'], resolve: dns })).ok,
      ).toBe(true);
      expect(
        (await checkUrl('https://loopback.example/', { allow: ['other.example'], resolve: dns }))
          .ok,
      ).toBe(false);
    });

    it('throws for entries that are neither hosts, addresses nor CIDR blocks', async () => {
      for (const entry of ['10.0.0.0/33', '10.0.0.0/', 'example.com/8', 'http://x', '::1/129']) {
        await expect(
          checkUrl('https://hooks.example.com/', { allow: [entry], resolve: dns }),
        ).rejects.toThrow(WebhookConfigError);
      }
    });
  });
});

describe('pinnedLookup', () => {
  const addresses: ResolvedAddress[] = [
    { address: '93.184.216.34', family: 4 },
    { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
  ];
  const call = (options: { all?: boolean; family?: number | 'IPv4' | 'IPv6' }) =>
    new Promise<{ err: unknown; address: unknown; family: unknown }>((resolve) => {
      pinnedLookup(addresses)('hooks.example.com', options, (err, address, family) =>
        resolve({ err, address, family }),
      );
    });

  it('answers with the vetted addresses, never asking DNS', async () => {
    expect(await call({})).toEqual({ err: null, address: '93.184.216.34', family: 4 });
    expect(await call({ all: true })).toEqual({ err: null, address: addresses, family: undefined });
    expect(await call({ family: 6 })).toMatchObject({
      address: '2606:2800:220:1:248:1893:25c8:1946',
      family: 6,
    });
    expect(await call({ family: 'IPv4', all: true })).toMatchObject({ address: [addresses[0]] });
  });

  it('fails with ENOTFOUND when no vetted address has the wanted family', async () => {
    const result = await new Promise<{ err: unknown }>((resolve) => {
      pinnedLookup([addresses[0]!])('h', { family: 6 }, (err) => resolve({ err }));
    });
    expect(result.err).toMatchObject({ code: 'ENOTFOUND' });
  });
});

describe('pinnedLookup with node:http', () => {
  it('connects to the vetted address while Host stays the URL host name', async () => {
    const server = http.createServer((req, res) => res.end(req.headers.host));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      // A name no resolver knows: only the pinned lookup can connect it.
      const checked = await checkUrl(`http://hooks.invalid:${port}/hook`, {
        allow: ['127.0.0.1'],
        resolve: fakeDns({ 'hooks.invalid': ['127.0.0.1'] }),
      });
      if (!checked.ok) throw new Error(checked.reason);
      const host = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          checked.url,
          { method: 'POST', lookup: pinnedLookup(checked.addresses) },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
      expect(host).toBe(`hooks.invalid:${port}`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
