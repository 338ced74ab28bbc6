/**
 * S3-compatible storage: put, get and delete objects, signed with AWS Signature Version 4.
 */
import { awsSigV4 } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env, type Configurable, type Secret } from '../declarations/secrets.js';
import {
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { s3Mock } from './s3.mock.js';
import type { S3ObjectData, S3ObjectParams, S3PutObjectParams } from './s3.types.js';

export type * from './s3.types.js';

/** The operations of {@link s3}, with their parameter and result types. */
export interface S3Operations {
  /** Resolves with `null`; `withResponse` has the `etag`. */
  put_object: OperationTypes<S3PutObjectParams, null>;
  get_object: OperationTypes<S3ObjectParams, S3ObjectData>;
  /** Resolves with `null`, also when there was no such object. */
  delete_object: OperationTypes<S3ObjectParams, null>;
}

/** Options of {@link s3}. `baseUrl` is the endpoint; default `env('S3_ENDPOINT_URL')`. */
export interface S3Options extends ConnectorOptions {
  /** Default `env('AWS_ACCESS_KEY_ID')`. */
  accessKeyId?: Secret;
  /** Default `env('AWS_SECRET_ACCESS_KEY')`. */
  secretAccessKey?: Secret;
  /** For temporary credentials, e.g. `env('AWS_SESSION_TOKEN')`. Default: none. */
  sessionToken?: Secret;
  /** Default `env('AWS_REGION')` (R2: `auto`; MinIO: usually `us-east-1`). */
  region?: Configurable;
  /** Sign `UNSIGNED-PAYLOAD` instead of hashing the body (large uploads over TLS). */
  unsignedPayload?: boolean;
}

/**
 * S3-compatible storage, ready to call: `put_object`, `get_object`, `delete_object`, path-style
 * (`{endpoint}/{bucket}/{key}`, which AWS, MinIO, R2 and Ceph all accept). Keys keep their `/`s.
 *
 * Defaults (seed 003's StorageService): the endpoint from `$S3_ENDPOINT_URL`
 * (`https://s3.us-east-1.amazonaws.com`, `http://127.0.0.1:9000`, ...); SigV4 with
 * `$AWS_ACCESS_KEY_ID`, `$AWS_SECRET_ACCESS_KEY` and `$AWS_REGION`; 60s timeout; 3 retries (PUT
 * and DELETE are idempotent, so every 5xx, `SlowDown` included, is retried); a breaker opening
 * after 5 failures in a minute for 30s. A string body is sent as `text/plain`; give another
 * content type in the call's headers.
 *
 * Mock: an in-memory store; GET after PUT returns the object, a missing key is 404 `NoSuchKey`,
 * a bucket named `missing…` 404 `NoSuchBucket`.
 *
 * @example
 * ```ts
 * export const storage = s3();
 *
 * await use(ctx, storage).put_object(
 *   { bucket: 'invoices', key: `2024/${orderId}.json`, body: JSON.stringify(invoice) },
 *   { headers: { 'content-type': 'application/json' } },
 * );
 * const stored = await use(ctx, storage).get_object({ bucket: 'invoices', key: `2024/${orderId}.json` });
 * ```
 */
export function s3(options: S3Options = {}): Connector<S3Operations> {
  const object = '/{bucket}/{key+}';
  return integration(
    withOverrides(
      {
        name: 'S3',
        baseUrl: env('S3_ENDPOINT_URL'),
        auth: awsSigV4({
          accessKeyId: options.accessKeyId ?? env('AWS_ACCESS_KEY_ID'),
          secretAccessKey: options.secretAccessKey ?? env('AWS_SECRET_ACCESS_KEY'),
          ...(options.sessionToken === undefined ? {} : { sessionToken: options.sessionToken }),
          region: options.region ?? env('AWS_REGION'),
          service: 's3',
          ...(options.unsignedPayload === undefined
            ? {}
            : { unsignedPayload: options.unsignedPayload }),
        }),
        timeout: '60s',
        retry: { maxAttempts: 4, initialInterval: '200ms', maxInterval: '20s' },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        mock: s3Mock(),
        operations: {
          put_object: { method: 'PUT', path: object, body: '{body}' },
          get_object: { method: 'GET', path: object },
          delete_object: { method: 'DELETE', path: object },
        },
      },
      options,
    ),
  );
}
