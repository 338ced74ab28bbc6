import { describe, expect, it } from 'vitest';
import { integration } from '../declarations/config.js';
import { buildRequest, formEncode, requestUrl, RequestBuildError } from './request.js';

const api = integration({
  name: 'Api',
  baseUrl: 'https://api.example.com/v1/',
  headers: { 'X-Version': '2024', 'X-Token': { env: 'API_TOKEN' } },
  operations: {
    get_user: { path: '/users/{username}', query: { fields: '{fields}', v: '1' } },
    search: { path: '/search' },
    create_issue: {
      method: 'POST',
      path: '/repos/{owner}/{repo}/issues',
      body: { title: '{title}', labels: ['{label}'], count: '{count}', note: 'by {owner}' },
    },
    create: { method: 'POST', path: '/things' },
    charge: {
      method: 'POST',
      path: '/charges',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    },
  },
});
const env = { API_TOKEN: 'tkn' };

describe('buildRequest', () => {
  it('fills path and query placeholders, leaves out absent optional ones, reads header secrets', () => {
    const r = buildRequest(api, api.operations.get_user, { username: 'octo cat' }, {}, env);
    expect(r).toMatchObject({ method: 'GET', path: '/users/octo%20cat', query: { v: '1' } });
    expect(r.headers).toEqual({
      accept: 'application/json',
      'x-version': '2024',
      'x-token': 'tkn',
    });
    expect(r.body).toBeUndefined();
    expect(requestUrl('https://api.example.com/v1/', r)).toBe(
      'https://api.example.com/v1/users/octo%20cat?v=1',
    );
  });

  it('sends left-over parameters as the query of a GET and the JSON body of a POST', () => {
    const q = buildRequest(
      api,
      api.operations.search,
      { q: 'keel', page: 2, tags: ['a', 'b'] },
      {},
      env,
    );
    expect(q.query).toEqual({ q: 'keel', page: '2', tags: 'a,b' });
    const p = buildRequest(api, api.operations.create, { name: 'x', n: 1 }, {}, env);
    expect(p.body).toBe('{"name":"x","n":1}');
    expect(p.headers['content-type']).toBe('application/json');
    expect(p.bodyValue).toEqual({ name: 'x', n: 1 });
  });

  it('expands a body template: exact placeholders keep their type, missing ones are left out', () => {
    const r = buildRequest(
      api,
      api.operations.create_issue,
      { owner: 'o', repo: 'r', title: 'Bug', label: 'p1', count: 3 },
      {},
      env,
    );
    expect(r.path).toBe('/repos/o/r/issues');
    expect(r.bodyValue).toEqual({ title: 'Bug', labels: ['p1'], count: 3, note: 'by o' });
    const partial = buildRequest(
      api,
      api.operations.create_issue,
      { owner: 'o', repo: 'r' },
      {},
      env,
    );
    expect(partial.bodyValue).toEqual({ labels: [], note: 'by o' });
  });

  it('refuses missing path parameters and unknown ones next to a body template', () => {
    expect(() => buildRequest(api, api.operations.get_user, {}, {}, env)).toThrow(
      /missing parameter "username"/,
    );
    expect(() =>
      buildRequest(
        api,
        api.operations.create_issue,
        { owner: 'o', repo: 'r', titel: 'x' },
        {},
        env,
      ),
    ).toThrow(RequestBuildError);
    expect(() => buildRequest(api, api.operations.get_user, { username: 'a' }, {}, {})).toThrow(
      /API_TOKEN/,
    );
  });

  it('form-encodes when the content type says so, with brackets for nesting', () => {
    const r = buildRequest(
      api,
      api.operations.charge,
      { amount: 500, metadata: { order: 42 } },
      {},
      env,
    );
    expect(r.body).toBe('amount=500&metadata%5Border%5D=42');
    expect(formEncode({ a: [1, 2], b: null, c: undefined })).toBe('a%5B0%5D=1&a%5B1%5D=2&b=');
  });

  it('applies call options: extra query and headers, a replacement body', () => {
    const r = buildRequest(
      api,
      api.operations.create,
      {},
      { query: { dry: true }, headers: { 'X-Trace': 't1' }, body: 'raw text' },
      env,
    );
    expect(r).toMatchObject({ query: { dry: 'true' }, body: 'raw text', bodyValue: 'raw text' });
    expect(r.headers).toMatchObject({
      'x-trace': 't1',
      'content-type': 'text/plain; charset=utf-8',
    });
    expect(() =>
      buildRequest(api, api.operations.create, {}, { headers: { bad: 'a\r\nb' } }, env),
    ).toThrow(/line breaks/);
  });

  it('builds a GraphQL document with declared variables, defaults and required checks', () => {
    const gql = integration({
      name: 'Gql',
      type: 'graphql',
      baseUrl: 'https://api.github.com/graphql',
      operations: {
        repos: {
          query: 'query R($login: String!, $first: Int!) { user(login: $login) { id } }',
          variables: {
            login: { type: 'string', required: true },
            first: { type: 'integer', default: 10 },
          },
        },
      },
    });
    const r = buildRequest(gql, gql.operations.repos, { login: 'octocat' });
    expect(r.method).toBe('POST');
    expect(r.bodyValue).toEqual({
      query: gql.operations.repos.kind === 'graphql' ? gql.operations.repos.query : '',
      variables: { login: 'octocat', first: 10 },
    });
    expect(requestUrl('https://api.github.com/graphql', r)).toBe('https://api.github.com/graphql');
    expect(() => buildRequest(gql, gql.operations.repos, {})).toThrow(/missing variable "login"/);
    expect(() => buildRequest(gql, gql.operations.repos, { login: 'a', nope: 1 })).toThrow(
      /unknown variable nope/,
    );
  });
});
