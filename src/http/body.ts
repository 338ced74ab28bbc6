import type { IncomingMessage } from 'node:http';
import { KeelError } from '../core/errors.js';

/** Request bodies: the media-type check, a bounded read, and JSON parsing. */

/** The body exceeded the limit; the connection is closed after the answer (see server.ts). */
export class BodyTooLargeError extends KeelError {
  constructor(limit: number) {
    super(
      `the request body is larger than the limit of ${limit} bytes; send less, or raise bodyLimit in the ingress options (KEEL_BODY_LIMIT for an app)`,
      {
        code: 'body_too_large',
        status: 413,
      },
    );
  }
}

/**
 * True when the content type is JSON: `application/json` or any `application/*+json`, with
 * optional parameters. A charset other than UTF-8 is refused: JSON on the wire is UTF-8
 * (RFC 8259) and decoding anything else as UTF-8 would silently corrupt the input.
 */
export function isJsonType(header: string): boolean {
  const semi = header.indexOf(';');
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  if (type !== 'application/json' && !(type.startsWith('application/') && type.endsWith('+json')))
    return false;
  if (semi === -1) return true;
  for (const param of header.slice(semi + 1).split(';')) {
    const eq = param.indexOf('=');
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = param
      .slice(eq + 1)
      .trim()
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8' && charset !== '"utf-8"') return false;
  }
  return true;
}

export function unsupportedMediaType(header: string | undefined): KeelError {
  const what = header === undefined ? 'a body without a Content-Type' : `Content-Type "${header}"`;
  return new KeelError(`${what} is not accepted: send JSON with Content-Type: application/json`, {
    code: 'unsupported_media_type',
    status: 415,
  });
}

/**
 * Reads the whole body, refusing it as soon as it passes `limit` bytes: the rest is never
 * buffered. A declared Content-Length over the limit is refused before a byte is read.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit)
    return Promise.reject(new BodyTooLargeError(limit));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * Parses a JSON body. An empty body is `undefined` input (a handler that takes no argument).
 * The parser's own message is kept, since it names the offending position, but not its stack.
 */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new KeelError(
      `the request body is not valid JSON (${err instanceof Error ? err.message : 'parse error'})`,
      {
        code: 'invalid_json',
        status: 400,
      },
    );
  }
}

/**
 * How long the connection of a refused upload stays open after the refusal, discarding what
 * the client still sends. Enough for a client on a fast link to finish its upload and read the
 * answer; bounded, so a client that never stops costs at most this long.
 */
const LINGER_MS = 2_000;

/**
 * Closes the connection of a refused upload (413) without losing the answer. Node closes a
 * `Connection: close` socket as soon as the answer is written; the client is still uploading
 * then, so the kernel answers its next bytes with a reset, and the client (blocked writing)
 * sees EPIPE or ECONNRESET instead of the 413. Here the answer is sent, our side is shut
 * (FIN), and what the client still sends is read and discarded until it closes or
 * {@link LINGER_MS} pass; only then is the socket destroyed (Go's net/http does the same).
 * Call it before the answer is written.
 */
export function closeAfterAnswer(req: IncomingMessage): void {
  const socket = req.socket;
  // Node's server ends a Connection: close socket with destroySoon() once the answer is
  // written; this socket's own replacement lingers instead.
  socket.destroySoon = function lingerThenDestroy(this: typeof socket): void {
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    this.end();
    // Discard the rest of the body: the parser feeds it to the (paused) request.
    req.resume();
  };
}
