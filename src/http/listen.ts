import { STATUS_CODES, type Server } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';

/** Binding a server and answering malformed HTTP: shared by the ingress and the admin API. */

/** Throws a TypeError unless `port` is a TCP port number (0 picks a free one). */
export function checkPort(port: number, name = 'port'): void {
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new TypeError(`${name} must be an integer from 0 to 65535, got ${port}`);
}

/** Listens on `port` and `host`; resolves with the bound port and the base URL. */
export async function listen(
  server: Server,
  port: number,
  host: string,
): Promise<{ port: number; url: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  return { port: boundPort, url: `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}` };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * True for an IP literal on the loopback interface: 127.0.0.0/8, `::1`, or an IPv4-mapped
 * loopback address. Hostnames are not resolved, so `localhost` is false: to judge a hostname,
 * check the address the server actually bound (`server.address()`).
 */
export function isLoopback(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Malformed HTTP never reaches a request handler; Node reports it here. Answer it in JSON like
 * everything else and close, unless the peer is gone or a response is already on the wire.
 */
export function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', 'the request was not received in time']
        : [400, 'bad_request', 'the request is not valid HTTP/1.1'];
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
