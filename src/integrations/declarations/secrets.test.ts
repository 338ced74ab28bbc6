import { describe, expect, it } from 'vitest';
import { MissingSecretError } from '../errors.js';
import { env, isEnvRef, resolveSecret } from './secrets.js';

describe('secrets', () => {
  it('env() makes a plain JSON reference and checks the name', () => {
    expect(env('GITHUB_TOKEN')).toEqual({ env: 'GITHUB_TOKEN' });
    expect(JSON.parse(JSON.stringify(env('A_1')))).toEqual({ env: 'A_1' });
    expect(() => env('1BAD')).toThrow(/letters, digits and _/);
    expect(() => env('A-B')).toThrow(RangeError);
  });

  it('isEnvRef', () => {
    expect(isEnvRef({ env: 'X' })).toBe(true);
    expect(isEnvRef({ env: 'X', other: 1 })).toBe(false);
    expect(isEnvRef('X')).toBe(false);
    expect(isEnvRef(null)).toBe(false);
  });

  it('reads the variable at use time', () => {
    const where = { integration: 'GitHubAPI', field: 'auth.token' };
    expect(resolveSecret(env('T'), where, { T: 'abc' })).toBe('abc');
    expect(resolveSecret('literal', where, {})).toBe('literal');
  });

  it('a missing or empty variable names itself, the integration and the field', () => {
    const where = { integration: 'GitHubAPI', field: 'auth.token' };
    expect(() => resolveSecret(env('GITHUB_TOKEN'), where, {})).toThrow(
      'integration GitHubAPI: auth.token reads the environment variable GITHUB_TOKEN, which is not set. Set GITHUB_TOKEN in the environment of the process that runs Keel.',
    );
    let err: unknown;
    try {
      resolveSecret(env('GITHUB_TOKEN'), where, { GITHUB_TOKEN: '' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingSecretError);
    expect(err).toMatchObject({
      code: 'missing_secret',
      variable: 'GITHUB_TOKEN',
      integration: 'GitHubAPI',
    });
    expect((err as Error).message).toContain('which is empty');
  });

  it('reads process.env by default', () => {
    process.env.KEEL_TEST_SECRET_READ = 'from-env';
    try {
      expect(resolveSecret(env('KEEL_TEST_SECRET_READ'), { integration: 'A', field: 'f' })).toBe(
        'from-env',
      );
    } finally {
      delete process.env.KEEL_TEST_SECRET_READ;
    }
  });
});
