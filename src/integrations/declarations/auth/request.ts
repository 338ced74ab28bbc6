/**
 * The request shape signers work on. Signers are pure: a request in, the URL and headers to
 * send out; they never send anything and never read the clock (`now` is part of the input).
 */

/** A request about to be sent. */
export interface RequestToSign {
  method: string;
  url: string;
  headers?: Readonly<Record<string, string>>;
  /** The exact bytes that will be sent (a string is sent as UTF-8). */
  body?: string | Uint8Array;
  /** Epoch ms; needed by signers that sign a time (SigV4). */
  now?: number;
}

/** What to send instead: the (possibly changed) URL and the full header set, names in lower case. */
export interface SignedRequest {
  url: string;
  headers: Record<string, string>;
}

/** Refuses a header value that would split the header (CR or LF), without echoing it. */
export function assertHeaderSafe(value: string, what: string): void {
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(`${what} contains a line break or NUL and cannot be sent in a header`);
  }
}
