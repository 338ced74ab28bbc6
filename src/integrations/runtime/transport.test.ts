import { afterAll, describe, expect, it } from 'vitest';
import { integration } from '../declarations/config.js';
import { buildRequest, requestUrl, type BuiltRequest } from './request.js';
import { HttpTransport } from './transport.js';

const http = new HttpTransport();
afterAll(() => http.close());

/** What undici's `request(url)` sends: origin and path from `new URL()`. */
function parsed(url: string): { origin: string; path: string } {
  const u = new URL(url);
  return { origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname };
}

const api = integration({
  name: 'TargetApi',
  baseUrl: 'http://127.0.0.1:8080',
  operations: {
    user: { path: '/users/{name}' },
    pair: { path: '/a/{x}/b/{y}', query: { q: '{q}' } },
    dotted: { path: '/.well-known/{x}' },
    greedy: { path: '/files/{key+}' },
    root: { path: '' },
    spaced: { path: '/sp ace/{x}' },
    encoded: { path: '/%2e/{x}' },
  },
});

describe('HttpTransport.target', () => {
  it('gives exactly the origin and path the URL parser would, or nothing', () => {
    const bases = [
      'http://127.0.0.1:8080',
      'http://127.0.0.1:8080/',
      'http://127.0.0.1:8080/v1',
      'https://api.example.com/v1/',
      'https://api.example.com/v1//',
      'http://API.example.com:80/x',
      'http://user:pw@example.com/x',
      'http://example.com/x?y=1',
      'http://example.com/a b',
      'http://example.com/./x',
      'ftp://example.com/x',
    ];
    const values = ['octocat', 'a b', '.', '..', '', 'x/y', '%2e', 'é', '?#', 'a.b', '...', 42];
    const queries: Array<Record<string, string>> = [{}, { page: '2' }, { 'a b': 'c/d?./..' }];
    let fast = 0;
    let total = 0;
    for (const base of bases) {
      for (const op of Object.values(api.operations)) {
        for (const v of values) {
          for (const query of queries) {
            let req: BuiltRequest;
            try {
              req = buildRequest(api, op, { name: v, x: v, y: v, q: v, key: `k/${v}` }, { query });
            } catch {
              continue; // refused while building (e.g. an empty path parameter): never sent
            }
            total++;
            const url = requestUrl(base, req);
            const t = http.target(base, req);
            let expected: { origin: string; path: string } | undefined;
            try {
              expected = parsed(url);
            } catch {
              expected = undefined;
            }
            if (t === undefined) continue;
            fast++;
            expect({ url, ...t }).toEqual({ url, ...expected });
          }
        }
      }
    }
    // The usual shapes take the fast path.
    expect(fast).toBeGreaterThan(total / 5);
    const user = buildRequest(api, api.operations.user, { name: 'octo cat' });
    expect(user.plainPath).toBe(true);
    expect(http.target('http://127.0.0.1:8080/v1/', user)).toEqual({
      origin: 'http://127.0.0.1:8080',
      path: '/v1/users/octo%20cat',
    });
    expect(http.target('http://127.0.0.1:8080', buildRequest(api, api.operations.root))).toEqual({
      origin: 'http://127.0.0.1:8080',
      path: '/',
    });
  });

  it('leaves dot segments, odd base URLs and unusual characters to the URL parser', () => {
    const req = (path: string, plainPath = false): BuiltRequest => ({
      method: 'GET',
      path,
      query: {},
      headers: {},
      body: undefined,
      bodyValue: undefined,
      plainPath,
    });
    const base = 'http://127.0.0.1:8080';
    expect(http.target(base, req('/users/..', true))).toBeUndefined();
    expect(http.target(base, req('/a/./b', true))).toBeUndefined();
    expect(http.target(base, req('/a/%2E%2e/b'))).toBeUndefined();
    expect(http.target(base, req('/a b'))).toBeUndefined();
    expect(http.target(base, req('/a|b'))).toBeUndefined();
    expect(http.target(base, req('/é'))).toBeUndefined();
    expect(http.target('http://API.example.com/', req('/x', true))).toBeUndefined();
    expect(http.target('http://example.com:80/', req('/x', true))).toBeUndefined();
    expect(http.target('http://example.com/?a=1', req('/x', true))).toBeUndefined();
    expect(http.target(base, req('/.well-known/x', true))).toEqual({
      origin: base,
      path: '/.well-known/x',
    });
  });
});
