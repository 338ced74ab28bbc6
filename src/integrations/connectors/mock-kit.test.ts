import { describe, expect, it } from 'vitest';
import { base62Id, connectorMock, formDecode, hexId, routes, stableJson } from './mock-kit.js';
import { formEncode } from '../runtime/request.js';
import { expandTemplate, templateParams } from '../declarations/url.js';

describe('mock kit', () => {
  it('stableJson ignores key order and undefined fields', () => {
    expect(stableJson({ b: 1, a: { d: [1, 2], c: undefined } })).toBe(
      stableJson({ a: { d: [1, 2] }, b: 1 }),
    );
    expect(stableJson({ a: 1 })).not.toBe(stableJson({ a: 2 }));
  });

  it('ids have the requested length and alphabet, and depend on every part', () => {
    expect(base62Id(24, 'x')).toMatch(/^[0-9A-Za-z]{24}$/);
    expect(hexId(70, 'x')).toMatch(/^[0-9a-f]{70}$/);
    expect(base62Id(24, 'x', 1)).not.toBe(base62Id(24, 'x', 2));
  });

  it('formDecode undoes the runtime formEncode, brackets and lists included', () => {
    const value = { amount: '2000', metadata: { order: '42', note: 'a b&c' }, items: ['x', 'y'] };
    expect(formDecode(formEncode(value))).toEqual(value);
    expect(formDecode('MediaUrl=a&MediaUrl=b&tags[]=1&tags[]=2')).toEqual({
      MediaUrl: ['a', 'b'],
      tags: ['1', '2'],
    });
  });

  it('routes match methods and paths, {key+} across slashes, and fall through to notFound', () => {
    const handle = routes(
      [
        { method: 'GET', path: '/users/{login}', handle: (_, p) => ({ body: p }) },
        { method: 'PUT', path: '/{bucket}/{key+}', handle: (_, p) => ({ body: p }) },
      ],
      () => ({ status: 404 }),
    );
    const req = (method: 'GET' | 'PUT', path: string) => ({
      integration: 'i',
      operation: 'o',
      method,
      path,
      query: {},
      headers: {},
      body: undefined,
    });
    expect(handle(req('GET', '/users/octo%20cat')).body).toEqual({ login: 'octo cat' });
    expect(handle(req('PUT', '/b/a/b%20c.txt')).body).toEqual({ bucket: 'b', key: 'a/b c.txt' });
    expect(handle(req('GET', '/users/a/b')).status).toBe(404);
    expect(handle(req('PUT', '/users/x')).body).toEqual({ bucket: 'users', key: 'x' });
  });

  it('failNext can target one operation, and reset forgets state', () => {
    let made = 0;
    const mock = connectorMock(
      () => {
        made++;
        return () => ({ status: 200 });
      },
      (status) => ({ status }),
    );
    mock.failNext(1, 503, 'b');
    const req = (operation: string) => ({
      integration: 'i',
      operation,
      method: 'GET' as const,
      path: '/',
      query: {},
      headers: {},
      body: undefined,
    });
    expect(mock(req('a')).status).toBe(200);
    expect(mock(req('b')).status).toBe(503);
    expect(mock(req('b')).status).toBe(200);
    expect(() => mock.failNext(0, 500)).toThrow(RangeError);
    mock.reset();
    expect(mock.requests).toHaveLength(0);
    expect(made).toBe(2);
  });
});

describe('greedy {name+} placeholders (S3 keys)', () => {
  it('keep slashes and encode each segment; the name has no +', () => {
    expect(templateParams('/{bucket}/{key+}')).toEqual(['bucket', 'key']);
    expect(expandTemplate('/{bucket}/{key+}', { bucket: 'b/x', key: 'a/b c/d.txt' })).toBe(
      '/b%2Fx/a/b%20c/d.txt',
    );
  });
});
