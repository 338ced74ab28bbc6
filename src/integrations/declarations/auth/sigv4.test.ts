/**
 * SigV4 against AWS's published examples. Sources (inputs and expected values copied from them):
 *
 * - S3: "Signature Calculations for the Authorization Header: Transferring Payload in a Single
 *   Chunk" (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html): GET Object,
 *   PUT Object, GET Bucket Lifecycle, GET Bucket (List Objects). Credentials
 *   AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z, us-east-1.
 * - S3: "Authenticating Requests: Using Query Parameters"
 *   (docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html): presigned GET.
 * - General reference / IAM user guide worked example (sigv4-create-canonical-request.html,
 *   sigv4-calculate-signature.html): IAM ListUsers, AKIDEXAMPLE /
 *   wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z, us-east-1.
 * - The aws-sig-v4-test-suite published with it: get-vanilla, post-vanilla,
 *   get-vanilla-query-order-key-case (service "service").
 */
import { describe, expect, it } from 'vitest';
import {
  EMPTY_SHA256,
  deriveSigningKey,
  presignAwsV4,
  sha256Hex,
  signAwsV4,
  uriEncode,
} from './sigv4.js';

const S3_CREDS = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};
const S3_NOW = Date.UTC(2013, 4, 24, 0, 0, 0);
const S3 = { credentials: S3_CREDS, region: 'us-east-1', service: 's3' };

const SUITE_CREDS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const SUITE_NOW = Date.UTC(2015, 7, 30, 12, 36, 0);

describe('signAwsV4: the S3 documentation examples', () => {
  it('GET Object with a Range header', () => {
    const signed = signAwsV4(
      {
        method: 'GET',
        url: 'https://examplebucket.s3.amazonaws.com/test.txt',
        headers: { Range: 'bytes=0-9' },
        now: S3_NOW,
      },
      S3,
    );
    expect(signed.canonicalRequest).toBe(
      [
        'GET',
        '/test.txt',
        '',
        'host:examplebucket.s3.amazonaws.com',
        'range:bytes=0-9',
        `x-amz-content-sha256:${EMPTY_SHA256}`,
        'x-amz-date:20130524T000000Z',
        '',
        'host;range;x-amz-content-sha256;x-amz-date',
        EMPTY_SHA256,
      ].join('\n'),
    );
    // The hash of the canonical request printed in the document's StringToSign.
    expect(signed.stringToSign).toBe(
      'AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n' +
        '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
    );
    expect(signed.signature).toBe(
      'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(signed.headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(signed.headers['x-amz-date']).toBe('20130524T000000Z');
    expect(signed.headers['x-amz-content-sha256']).toBe(EMPTY_SHA256);
    expect(signed.headers.range).toBe('bytes=0-9');
    expect(signed.headers).not.toHaveProperty('host');
    expect(signed.url).toBe('https://examplebucket.s3.amazonaws.com/test.txt');
  });

  it('PUT Object: a signed Date header, a storage class, a body, and $ in the key', () => {
    const body = 'Welcome to Amazon S3.';
    expect(sha256Hex(body)).toBe(
      '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
    );
    const signed = signAwsV4(
      {
        method: 'PUT',
        url: 'https://examplebucket.s3.amazonaws.com/test$file.text',
        headers: {
          Date: 'Fri, 24 May 2013 00:00:00 GMT',
          'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        },
        body,
        now: S3_NOW,
      },
      S3,
    );
    expect(signed.signedHeaders).toBe(
      'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
    );
    expect(signed.signature).toBe(
      '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
    );
    // The key is sent exactly as signed.
    expect(signed.url).toBe('https://examplebucket.s3.amazonaws.com/test%24file.text');
  });

  it('GET Bucket lifecycle: a query parameter without a value', () => {
    const signed = signAwsV4(
      { method: 'GET', url: 'https://examplebucket.s3.amazonaws.com/?lifecycle', now: S3_NOW },
      S3,
    );
    expect(signed.canonicalRequest.split('\n')[2]).toBe('lifecycle=');
    expect(signed.signature).toBe(
      'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
    );
  });

  it('GET Bucket (list objects): query parameters sorted', () => {
    const signed = signAwsV4(
      {
        method: 'GET',
        url: 'https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2',
        now: S3_NOW,
      },
      S3,
    );
    expect(signed.canonicalRequest.split('\n')[2]).toBe('max-keys=2&prefix=J');
    expect(signed.signature).toBe(
      '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
    );
    expect(signed.url).toBe('https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J');
  });

  it('presigned GET (query string authentication), valid 24 hours', () => {
    const signed = presignAwsV4(
      { method: 'GET', url: 'https://examplebucket.s3.amazonaws.com/test.txt', now: S3_NOW },
      { ...S3, expiresIn: 86400 },
    );
    expect(sha256Hex(signed.canonicalRequest)).toBe(
      '3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04',
    );
    expect(signed.url).toBe(
      'https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
        '&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
        '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
        '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
    );
  });
});

describe('signAwsV4: the general SigV4 examples', () => {
  it('derives the documented signing key', () => {
    expect(
      deriveSigningKey(SUITE_CREDS.secretAccessKey, '20150830', 'us-east-1', 'iam').toString('hex'),
    ).toBe('c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9');
  });

  it('IAM ListUsers', () => {
    const signed = signAwsV4(
      {
        method: 'GET',
        url: 'https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
        now: SUITE_NOW,
      },
      { credentials: SUITE_CREDS, region: 'us-east-1', service: 'iam' },
    );
    expect(signed.canonicalRequest).toBe(
      [
        'GET',
        '/',
        'Action=ListUsers&Version=2010-05-08',
        'content-type:application/x-www-form-urlencoded; charset=utf-8',
        'host:iam.amazonaws.com',
        'x-amz-date:20150830T123600Z',
        '',
        'content-type;host;x-amz-date',
        EMPTY_SHA256,
      ].join('\n'),
    );
    expect(sha256Hex(signed.canonicalRequest)).toBe(
      'f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59',
    );
    expect(signed.headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, ' +
        'SignedHeaders=content-type;host;x-amz-date, ' +
        'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    );
    // A service other than S3 gets no x-amz-content-sha256.
    expect(signed.headers).not.toHaveProperty('x-amz-content-sha256');
  });

  it.each([
    [
      'get-vanilla',
      'GET',
      'https://example.amazonaws.com/',
      '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    ],
    [
      'post-vanilla',
      'POST',
      'https://example.amazonaws.com/',
      '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    ],
    [
      'get-vanilla-query-order-key-case',
      'GET',
      'https://example.amazonaws.com/?Param2=value2&Param1=value1',
      'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
    ],
  ])('test suite: %s', (_name, method, url, signature) => {
    const signed = signAwsV4(
      { method, url, now: SUITE_NOW },
      { credentials: SUITE_CREDS, region: 'us-east-1', service: 'service' },
    );
    expect(signed.signedHeaders).toBe('host;x-amz-date');
    expect(signed.signature).toBe(signature);
  });
});

describe('signAwsV4: encoding and options', () => {
  const base = { credentials: SUITE_CREDS, region: 'us-east-1' };

  it("encodes what encodeURIComponent leaves alone (!'()*) and keeps - . _ ~", () => {
    expect(uriEncode("a b!'()*-._~/é")).toBe('a%20b%21%27%28%29%2A-._~%2F%C3%A9');
  });

  it('S3 keys: each segment encoded once, empty segments and slashes kept', () => {
    const signed = signAwsV4(
      {
        method: 'GET',
        url: 'https://b.s3.amazonaws.com/photos//été 2013/a+b (1).jpg',
        now: SUITE_NOW,
      },
      { ...base, service: 's3' },
    );
    const path = '/photos//%C3%A9t%C3%A9%202013/a%2Bb%20%281%29.jpg';
    expect(signed.canonicalRequest.split('\n')[1]).toBe(path);
    expect(signed.url).toBe(`https://b.s3.amazonaws.com${path}`);
  });

  it('other services: the path is normalized and encoded twice', () => {
    const signed = signAwsV4(
      { method: 'GET', url: 'https://example.amazonaws.com/a//b c/', now: SUITE_NOW },
      { ...base, service: 'service' },
    );
    expect(signed.canonicalRequest.split('\n')[1]).toBe('/a/b%2520c/');
    expect(signed.url).toBe('https://example.amazonaws.com/a//b%20c/');
  });

  it('query: + is a space, values sorted within a name, encoding made strict', () => {
    const signed = signAwsV4(
      {
        method: 'GET',
        url: 'https://example.amazonaws.com/?b=2&a=y&a=x&q=one+two&s=%2a',
        now: SUITE_NOW,
      },
      { ...base, service: 'service' },
    );
    expect(signed.canonicalRequest.split('\n')[2]).toBe('a=x&a=y&b=2&q=one%20two&s=%2A');
  });

  it('UNSIGNED-PAYLOAD for S3, and a non-default port in the signed host', () => {
    const signed = signAwsV4(
      {
        method: 'PUT',
        url: 'http://localhost:9000/bucket/big.bin',
        body: 'x'.repeat(1000),
        now: SUITE_NOW,
      },
      { ...base, service: 's3', unsignedPayload: true },
    );
    expect(signed.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(signed.canonicalRequest.endsWith('\nUNSIGNED-PAYLOAD')).toBe(true);
    expect(signed.canonicalRequest).toContain('host:localhost:9000\n');
  });

  it('hashes the body, signs a session token, drops an old authorization, skips user-agent', () => {
    const signed = signAwsV4(
      {
        method: 'POST',
        url: 'https://sts.amazonaws.com/',
        headers: { Authorization: 'stale', 'User-Agent': 'keel', 'X-Custom': '  a   b  ' },
        body: 'Action=GetSessionToken&Version=2011-06-15',
        now: SUITE_NOW,
      },
      {
        credentials: { ...SUITE_CREDS, sessionToken: 'TOKEN' },
        region: 'us-east-1',
        service: 'sts',
      },
    );
    expect(
      signed.canonicalRequest.endsWith(
        `\n${sha256Hex('Action=GetSessionToken&Version=2011-06-15')}`,
      ),
    ).toBe(true);
    expect(signed.signedHeaders).toBe('host;x-amz-date;x-amz-security-token;x-custom');
    expect(signed.canonicalRequest).toContain('x-custom:a b\n');
    expect(signed.headers['x-amz-security-token']).toBe('TOKEN');
    expect(signed.headers['user-agent']).toBe('keel');
    expect(signed.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
  });

  it('needs now, and refuses a header that would split', () => {
    expect(() =>
      signAwsV4(
        { method: 'GET', url: 'https://x.amazonaws.com/' },
        { ...base, service: 'service' },
      ),
    ).toThrow(/pass now/);
    expect(() =>
      signAwsV4(
        { method: 'GET', url: 'https://x.amazonaws.com/', headers: { 'x-a': 'a\r\nb: c' }, now: 0 },
        { ...base, service: 'service' },
      ),
    ).toThrow(/line break/);
  });

  it('presign: refuses an expiry beyond 7 days', () => {
    expect(() =>
      presignAwsV4(
        { method: 'GET', url: 'https://b.s3.amazonaws.com/k', now: S3_NOW },
        { ...S3, expiresIn: 604_801 },
      ),
    ).toThrow(/604800/);
  });
});
