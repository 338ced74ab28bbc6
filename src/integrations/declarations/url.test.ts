import { describe, expect, expectTypeOf, it } from 'vitest';
import { expandTemplate, joinUrl, templateParams, type PathParams } from './url.js';

describe('path templates', () => {
  it('lists placeholders, in order', () => {
    expect(templateParams('/repos/{owner}/{repo}/issues/{number}')).toEqual([
      'owner',
      'repo',
      'number',
    ]);
    expect(templateParams('/rate_limit')).toEqual([]);
    expectTypeOf<PathParams<'/repos/{owner}/{repo}'>>().toEqualTypeOf<'owner' | 'repo'>();
  });

  it.each([
    ['/users/{}', /\{\} is not a valid placeholder/],
    ['/users/{user-id}', /\{user-id\} is not a valid placeholder/],
    ['/users/{id', /unbalanced/],
    ['/users/id}', /unbalanced/],
    ['/{a}/{a}', /\{a\} appears twice/],
  ])('refuses %s', (template, message) => {
    expect(() => templateParams(template)).toThrow(message);
  });

  it('fills placeholders, one encoded segment each', () => {
    expect(expandTemplate('/repos/{owner}/{repo}', { owner: 'a b', repo: '../x/y' })).toBe(
      '/repos/a%20b/..%2Fx%2Fy',
    );
    expect(expandTemplate('/issues/{n}', { n: 42 })).toBe('/issues/42');
    expect(() => expandTemplate('/users/{username}', {})).toThrow(
      'missing parameter "username" for /users/{username}',
    );
  });

  it('joins a base URL and a path without losing the base path', () => {
    expect(joinUrl('https://api.stripe.com/v1', '/charges')).toBe(
      'https://api.stripe.com/v1/charges',
    );
    expect(joinUrl('https://api.stripe.com/v1/', 'charges')).toBe(
      'https://api.stripe.com/v1/charges',
    );
    expect(joinUrl('https://api.github.com', '')).toBe('https://api.github.com');
  });
});
