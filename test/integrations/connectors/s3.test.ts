import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, s3 } from '../../../src/integrations/index.js';
import { s3Mock } from '../../../src/integrations/mocks.js';
import { fakeS3, type Fake } from '../../fakes/providers/index.js';
import { verifySigV4 } from '../../fakes/providers/sigv4-verify.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const CREDS = {
  accessKeyId: 'AKIAKEELTEST',
  secretAccessKey: 'keel/secret+key/EXAMPLE',
  region: 'eu-west-1',
  service: 's3',
};

let fake: Fake;
let temp: Fake;
beforeAll(async () => {
  fake = await fakeS3(CREDS);
  temp = await fakeS3({ ...CREDS, sessionToken: 'session-token-xyz' });
});
afterAll(async () => {
  await fake.api.close();
  await temp.api.close();
});

function envFor(api: Fake, extra: Record<string, string> = {}) {
  return {
    S3_ENDPOINT_URL: api.api.url,
    AWS_ACCESS_KEY_ID: CREDS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
    AWS_REGION: CREDS.region,
    ...extra,
  };
}

describe('s3 connector on the wire', () => {
  it('PUTs, GETs and DELETEs an object with SigV4 that the server verifies independently', async () => {
    const storage = clientOf(
      runtime({ env: envFor(fake) }),
      s3({ name: 'S3Wire1', retry: FAST_RETRY }),
    );
    const key = 'invoices/2024/order 42.json';
    const put = await storage.put_object.withResponse(
      { bucket: 'shop', key, body: JSON.stringify({ total: 2000 }) },
      { headers: { 'content-type': 'application/json' } },
    );
    const r = fake.api.last();
    expect(r.method).toBe('PUT');
    // The key keeps its slashes; each segment is encoded.
    expect(r.target).toBe('/shop/invoices/2024/order%2042.json');
    expect(r.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIAKEELTEST\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$/,
    );
    expect(r.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(r.text).toBe('{"total":2000}');
    expect(put.status).toBe(200);
    expect(put.headers.etag).toMatch(/^"[0-9a-f]{32}"$/);

    expect(await storage.get_object({ bucket: 'shop', key })).toEqual({ total: 2000 });
    expect(fake.api.last().method).toBe('GET');
    expect(await storage.delete_object({ bucket: 'shop', key })).toBeNull();
    expect(fake.api.last().method).toBe('DELETE');
    const gone = await callError(storage.get_object({ bucket: 'shop', key }));
    expect(gone.failure.status).toBe(404);
    expect(String(gone.failure.body)).toContain('<Code>NoSuchKey</Code>');
  });

  it('a wrong secret is refused by the verifier (403 SignatureDoesNotMatch), not retried', async () => {
    const storage = clientOf(
      runtime({ env: envFor(fake, { AWS_SECRET_ACCESS_KEY: 'not-the-secret' }) }),
      s3({ name: 'S3Wire2', retry: FAST_RETRY }),
    );
    const before = fake.api.requests.length;
    const err = await callError(storage.put_object({ bucket: 'shop', key: 'a.txt', body: 'x' }));
    expect(err.failure.status).toBe(403);
    expect(String(err.failure.body)).toContain('SignatureDoesNotMatch');
    expect(fake.api.requests.length - before).toBe(1);
  });

  it('signs the session token of temporary credentials, and UNSIGNED-PAYLOAD when asked', async () => {
    const storage = clientOf(
      runtime({ env: envFor(temp, { AWS_SESSION_TOKEN: 'session-token-xyz' }) }),
      s3({
        name: 'S3Wire3',
        sessionToken: env('AWS_SESSION_TOKEN'),
        unsignedPayload: true,
        retry: FAST_RETRY,
      }),
    );
    await storage.put_object({ bucket: 'shop', key: 'big.bin', body: 'pretend this is large' });
    const r = temp.api.last();
    expect(r.headers['x-amz-security-token']).toBe('session-token-xyz');
    expect(r.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(await storage.get_object({ bucket: 'shop', key: 'big.bin' })).toBe(
      'pretend this is large',
    );
  });

  it('retries a SlowDown 503', async () => {
    const storage = clientOf(
      runtime({ env: envFor(fake) }),
      s3({ name: 'S3Wire4', retry: FAST_RETRY }),
    );
    const before = fake.api.requests.length;
    fake.mock.failNext(1, 503);
    await storage.put_object({ bucket: 'shop', key: 'retry.txt', body: 'ok' });
    expect(fake.api.requests.length - before).toBe(2);
  });
});

describe('s3 mock', () => {
  it('GET after PUT returns the object with its ETag; a missing bucket is NoSuchBucket', async () => {
    const storage = clientOf(runtime({ mock: true, env: {} }), s3({ name: 'S3Mock1' }));
    await storage.put_object({ bucket: 'b', key: 'notes/today.txt', body: 'hello' });
    const got = await storage.get_object.withResponse({ bucket: 'b', key: 'notes/today.txt' });
    expect(got).toMatchObject({ data: 'hello', source: 'mock' });
    expect(got.headers.etag).toBe('"5d41402abc4b2a76b9719d911017c592"'); // MD5 of "hello", as S3
    const mock = s3Mock();
    expect(String(mock(mockReq('GET', '/missing-bucket/x')).body)).toContain(
      '<Code>NoSuchBucket</Code>',
    );
    expect(mock(mockReq('DELETE', '/b/never-there')).status).toBe(204);
  });
});

describe('the fake S3 server’s own signature check', () => {
  // AWS's published example (GET Object, "Signature Calculations for the Authorization Header"),
  // so the verifier is known right independently of the signer under test.
  const example = {
    method: 'GET',
    target: '/test.txt',
    rawPath: '/test.txt',
    rawQuery: '',
    query: {},
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      'x-amz-date': '20130524T000000Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    },
    body: Buffer.alloc(0),
    text: '',
  };
  const aws = {
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'us-east-1',
    service: 's3',
  };

  it('accepts the example and refuses it tampered with', () => {
    expect(verifySigV4(example, aws)).toBeUndefined();
    expect(
      verifySigV4({ ...example, headers: { ...example.headers, range: 'bytes=0-99' } }, aws),
    ).toBe('SignatureDoesNotMatch');
    expect(verifySigV4({ ...example, body: Buffer.from('x') }, aws)).toBe(
      'XAmzContentSHA256Mismatch',
    );
    expect(verifySigV4({ ...example, rawPath: '/test%2Etxt' }, aws)).toBeUndefined();
    expect(verifySigV4({ ...example, rawPath: '/a%2Fb' }, aws)).toBe('SignatureDoesNotMatch');
  });
});
