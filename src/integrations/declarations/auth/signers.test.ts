import { describe, expect, it } from 'vitest';
import { MissingSecretError } from '../../errors.js';
import { env } from '../secrets.js';
import { signApiKey } from './api-key.js';
import { authorize, authorizeOwned, resolveClientCredentials } from './authorize.js';
import { signBasic } from './basic.js';
import { signBearer } from './bearer.js';
import { apiKey, awsSigV4, basic, bearer, oauth2 } from './config.js';

const REQ = {
  method: 'GET',
  url: 'https://api.example.com/v1/items?page=2',
  headers: { Accept: 'application/json' },
};

describe('signers', () => {
  it('bearer: one authorization header, whatever case the old one had', () => {
    expect(signBearer({ ...REQ, headers: { Authorization: 'old', Accept: 'x' } }, 'tok')).toEqual({
      url: REQ.url,
      headers: { authorization: 'Bearer tok', accept: 'x' },
    });
    expect(() => signBearer(REQ, 'tok\r\nX-Evil: 1')).toThrow(/line break/);
  });

  it('basic: base64 of user:password in UTF-8 (RFC 7617 example)', () => {
    expect(signBasic(REQ, 'Aladdin', 'open sesame').headers.authorization).toBe(
      'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==',
    );
    expect(signBasic(REQ, 'test', '123£').headers.authorization).toBe('Basic dGVzdDoxMjPCow==');
    expect(() => signBasic(REQ, 'a:b', 'p')).toThrow(/cannot contain ":"/);
  });

  it('api key in a header', () => {
    expect(signApiKey(REQ, 'k1', { in: 'header', name: 'X-Api-Key' }).headers).toEqual({
      accept: 'application/json',
      'x-api-key': 'k1',
    });
  });

  it('api key in the query: appended, replacing one of the same name, the rest untouched', () => {
    expect(signApiKey(REQ, 'k 1', { in: 'query', name: 'appid' }).url).toBe(
      'https://api.example.com/v1/items?page=2&appid=k%201',
    );
    expect(
      signApiKey({ ...REQ, url: 'https://x.example.com/w?appid=old&q=a%20b+c#top' }, 'new', {
        in: 'query',
        name: 'appid',
      }).url,
    ).toBe('https://x.example.com/w?q=a%20b+c&appid=new#top');
    expect(
      signApiKey({ ...REQ, url: 'https://x.example.com/w' }, 'k', { in: 'query', name: 'appid' })
        .url,
    ).toBe('https://x.example.com/w?appid=k');
  });
});

describe('authorize: declared auth, secrets read at use time', () => {
  const ctx = {
    integration: 'Api',
    env: {
      TOKEN: 't0k',
      USER: 'u',
      PASS: 'p',
      KEY: 'k',
      AK: 'AKIDEXAMPLE',
      SK: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      REGION: 'us-east-1',
    },
  };

  it('none passes the request through with lower-case headers', () => {
    expect(authorize({ type: 'none' }, REQ, ctx)).toEqual({
      url: REQ.url,
      headers: { accept: 'application/json' },
    });
  });

  it('bearer, basic, api key', () => {
    expect(authorize(bearer(env('TOKEN')), REQ, ctx).headers.authorization).toBe('Bearer t0k');
    expect(authorize(basic(env('USER'), env('PASS')), REQ, ctx).headers.authorization).toBe(
      `Basic ${Buffer.from('u:p').toString('base64')}`,
    );
    expect(authorize(apiKey(env('KEY'), { query: 'appid' }), REQ, ctx).url).toBe(
      `${REQ.url}&appid=k`,
    );
  });

  it('AWS SigV4 (the IAM ListUsers example, through the declaration)', () => {
    const signed = authorize(
      awsSigV4({
        accessKeyId: env('AK'),
        secretAccessKey: env('SK'),
        region: env('REGION'),
        service: 'iam',
      }),
      {
        method: 'GET',
        url: 'https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
        now: Date.UTC(2015, 7, 30, 12, 36, 0),
      },
      ctx,
    );
    expect(signed.headers.authorization).toMatch(
      /Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7$/,
    );
  });

  it('OAuth2 signs with the token it is given, and says where to get one', () => {
    const auth = oauth2({
      tokenUrl: 'https://auth.example.com/token',
      clientId: 'id',
      clientSecret: env('PASS'),
    });
    expect(authorize(auth, REQ, { ...ctx, accessToken: 'at' }).headers.authorization).toBe(
      'Bearer at',
    );
    expect(() => authorize(auth, REQ, ctx)).toThrow(
      /needs an access token; get one from the integration's OAuth2TokenCache/,
    );
    expect(resolveClientCredentials({ ...auth, scope: 'read' }, ctx)).toEqual({
      tokenUrl: 'https://auth.example.com/token',
      clientId: 'id',
      clientSecret: 'p',
      scope: 'read',
    });
  });

  it('authorizeOwned signs as authorize does; bearer in place, with no copy', () => {
    const owned = () => ({
      method: 'GET',
      url: REQ.url,
      headers: { accept: 'application/json' } as Record<string, string>,
      now: Date.UTC(2015, 7, 30, 12, 36, 0),
    });
    const schemes = [
      { type: 'none' as const },
      bearer(env('TOKEN')),
      bearer('literal-token'),
      basic(env('USER'), env('PASS')),
      apiKey(env('KEY'), { query: 'appid' }),
      apiKey(env('KEY'), { header: 'X-Api-Key' }),
      awsSigV4({
        accessKeyId: env('AK'),
        secretAccessKey: env('SK'),
        region: 'us-east-1',
        service: 'iam',
      }),
    ];
    for (const auth of schemes) {
      const signed = authorizeOwned(auth, owned(), ctx);
      const wanted = authorize(auth, owned(), ctx);
      expect({ url: signed.url, headers: { ...signed.headers } }).toEqual({
        url: wanted.url,
        headers: wanted.headers,
      });
    }
    const req = owned();
    expect(authorizeOwned(bearer(env('TOKEN')), req, ctx)).toBe(req);
    expect(req.headers).toEqual({ accept: 'application/json', authorization: 'Bearer t0k' });
    const auth = oauth2({ tokenUrl: 'https://a.example.com/t', clientId: 'i', clientSecret: 's' });
    expect(authorizeOwned(auth, owned(), { ...ctx, accessToken: 'at' }).headers.authorization).toBe(
      'Bearer at',
    );
    expect(() => authorizeOwned(auth, owned(), ctx)).toThrow(/needs an access token/);
    // An unsafe token is refused every time, not only the first.
    for (let i = 0; i < 2; i++) {
      expect(() => authorizeOwned(bearer('t\r\nX-Evil: 1'), owned(), ctx)).toThrow(/line break/);
    }
  });

  it('a missing variable names itself, the integration and the field', () => {
    let err: unknown;
    try {
      authorize(bearer(env('GITHUB_TOKEN')), REQ, { integration: 'GitHubAPI', env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MissingSecretError);
    expect((err as Error).message).toBe(
      'integration GitHubAPI: auth.token reads the environment variable GITHUB_TOKEN, which is not set. Set GITHUB_TOKEN in the environment of the process that runs Keel.',
    );
  });
});
