/**
 * S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, Ceph, ...), path-style:
 * `{endpoint}/{bucket}/{key}`.
 */

/** Which object. `key` may hold `/` (`invoices/2024/42.pdf`). */
export interface S3ObjectParams {
  bucket: string;
  key: string;
}

/**
 * `PUT /{bucket}/{key}`. A string is stored as UTF-8 (`text/plain` unless the call's headers
 * give a `content-type`); bytes as they are.
 */
export interface S3PutObjectParams extends S3ObjectParams {
  body?: string | Uint8Array;
}

/**
 * What `get_object` returns: the object's text; parsed JSON when its content type is JSON; the
 * bytes in base64 when it is neither text nor JSON.
 */
export type S3ObjectData = unknown;

/** S3's XML error document, as text: `<Error><Code>NoSuchKey</Code>...</Error>`. */
export type S3ErrorBody = string;
