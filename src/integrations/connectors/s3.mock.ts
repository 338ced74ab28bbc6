/**
 * S3 in-process: a bucket store in memory. PUT stores (ETag = MD5 of the bytes, as S3's), GET
 * returns what was stored with its content type, DELETE removes (204 even when absent, as S3).
 * Failures on demand: a missing key → 404 `NoSuchKey`; a bucket named `missing…` → 404
 * `NoSuchBucket`; `failNext(1, 503)` → `SlowDown`.
 */
import { createHash } from 'node:crypto';
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  connectorMock,
  hexId,
  isMissing,
  MOCK_EPOCH_S,
  routes,
  type ConnectorMock,
} from './mock-kit.js';

const S3_ERRORS: Readonly<Record<number, [code: string, message: string]>> = {
  400: ['InvalidRequest', 'Invalid Request'],
  403: ['AccessDenied', 'Access Denied'],
  404: ['NoSuchKey', 'The specified key does not exist.'],
  500: ['InternalError', 'We encountered an internal error. Please try again.'],
  503: ['SlowDown', 'Please reduce your request rate.'],
};

interface StoredObject {
  bytes: Buffer;
  contentType: string;
  etag: string;
  lastModified: string;
}

/**
 * An S3 mock with its own buckets.
 *
 * @example
 * ```ts
 * const storage = s3({ mock: s3Mock(), mockMode: true });
 * ```
 */
export function s3Mock(): ConnectorMock {
  return connectorMock(makeS3, (status, req) => {
    const [code, message] = S3_ERRORS[status] ?? ['ServiceUnavailable', 'Mock failure.'];
    return s3Error(status, code, message, req.path);
  });
}

/** An S3 error document. */
export function s3Error(
  status: number,
  code: string,
  message: string,
  resource: string,
): MockResponse {
  const id = hexId(16, 'request', resource, code).toUpperCase();
  const xml =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<Resource>${escapeXml(resource)}</Resource><RequestId>${id}</RequestId></Error>`;
  return {
    status,
    headers: { 'content-type': 'application/xml', 'x-amz-request-id': id },
    body: xml,
  };
}

function makeS3(): (req: MockRequest) => MockResponse {
  const objects = new Map<string, StoredObject>();
  const guard =
    (handle: (req: MockRequest, bucket: string, key: string) => MockResponse) =>
    (req: MockRequest, p: Record<string, string>): MockResponse =>
      isMissing(p.bucket)
        ? s3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', `/${p.bucket}`)
        : handle(req, p.bucket!, p.key!);

  return routes(
    [
      {
        method: 'PUT',
        path: '/{bucket}/{key+}',
        handle: guard((req, bucket, key) => {
          const bytes = Buffer.from(
            typeof req.body === 'string'
              ? req.body
              : req.body === undefined
                ? ''
                : JSON.stringify(req.body),
            'utf8',
          );
          const etag = `"${createHash('md5').update(bytes).digest('hex')}"`;
          objects.set(`${bucket}/${key}`, {
            bytes,
            contentType: req.headers['content-type'] ?? 'binary/octet-stream',
            etag,
            lastModified: new Date((MOCK_EPOCH_S + objects.size) * 1000).toUTCString(),
          });
          return { status: 200, headers: { etag } };
        }),
      },
      {
        method: 'GET',
        path: '/{bucket}/{key+}',
        handle: guard((req, bucket, key) => {
          const o = objects.get(`${bucket}/${key}`);
          if (o === undefined)
            return s3Error(404, 'NoSuchKey', 'The specified key does not exist.', req.path);
          const text = o.bytes.toString('utf8');
          // What the runtime would make of these bytes on the wire: JSON parsed, text as text.
          let body: unknown = text;
          if (o.contentType.includes('json')) {
            try {
              body = JSON.parse(text);
            } catch {
              body = text;
            }
          }
          return {
            status: 200,
            headers: {
              'content-type': o.contentType,
              'content-length': String(o.bytes.length),
              etag: o.etag,
              'last-modified': o.lastModified,
            },
            body,
          };
        }),
      },
      {
        method: 'DELETE',
        path: '/{bucket}/{key+}',
        handle: guard((_, bucket, key) => {
          objects.delete(`${bucket}/${key}`);
          return { status: 204 };
        }),
      },
    ],
    (req) =>
      s3Error(
        405,
        'MethodNotAllowed',
        'The specified method is not allowed against this resource.',
        req.path,
      ),
  );
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
