import type { FuzzCase, Surface } from './cases.js';
import type { Generator } from './generator.js';
import type { Rand } from './random.js';
import { segment } from './values.js';

/**
 * Protocol-level abuse over a bare TCP socket: what an HTTP client library refuses to send
 * (bad framing, conflicting lengths, broken chunking, missing Host, huge or malformed headers).
 * Every such request is invalid: its target is one that would change state if it were read.
 */

function raw(surface: Surface, text: string | Buffer, hangUp = false): FuzzCase {
  return {
    transport: 'raw',
    surface,
    gen: '',
    valid: false,
    bytes: Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'),
    hangUp,
  };
}

const H = 'Host: 127.0.0.1\r\n';
const JSON_CT = 'Content-Type: application/json\r\n';
const target = (r: Rand): string =>
  r.pick([
    '/Counter/k1/add',
    '/Counter/k2/add/send',
    '/OrderSaga/order-1/Run',
    '/Greeter/greet',
    '/awakeables/awk_x_1/resolve',
    '/webhooks/stripe',
  ]);

export const rawInvalid: Generator[] = [
  {
    name: 'raw-content-length',
    valid: false,
    weight: 3,
    make: (r) => {
      const t = target(r);
      return r.pick([
        () =>
          raw(
            'ingress',
            `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: 1\r\nContent-Length: 2\r\n\r\n12`,
          ),
        () => raw('ingress', `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: abc\r\n\r\n1`),
        () => raw('ingress', `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: -1\r\n\r\n1`),
        () =>
          raw(
            'ingress',
            `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: ${'9'.repeat(r.int(10, 40))}\r\n\r\n1`,
          ),
        () => raw('ingress', `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: 1 1\r\n\r\n1`),
        () =>
          raw('ingress', `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: 100\r\n\r\n1`, true),
        () =>
          raw(
            'ingress',
            `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: 5000000\r\n\r\n${'1'.repeat(r.int(0, 1000))}`,
            r.chance(0.5),
          ),
        () =>
          raw(
            'ingress',
            `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n5\r\n0\r\n\r\n`,
          ),
      ])();
    },
  },
  {
    name: 'raw-chunked',
    valid: false,
    weight: 3,
    make: (r) => {
      const t = target(r);
      const head = `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Transfer-Encoding: chunked\r\n\r\n`;
      return r.pick([
        () => raw('ingress', `${head}zz\r\n1\r\n0\r\n\r\n`),
        () => raw('ingress', `${head}1\r\n1`, true),
        () => raw('ingress', `${head}5\r\n1\r\n0\r\n\r\n`),
        () => raw('ingress', `${head}-1\r\n1\r\n0\r\n\r\n`),
        () => raw('ingress', `${head}${'f'.repeat(20)}\r\n1\r\n0\r\n\r\n`),
        () => raw('ingress', `${head}1;ext=${'x'.repeat(r.int(1, 20000))}\r\n{\r\n0\r\n\r\n`),
        () =>
          raw(
            'ingress',
            `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Transfer-Encoding: gzip, chunked\r\n\r\n1\r\n1\r\n0\r\n\r\n`,
          ),
        () =>
          raw(
            'ingress',
            `POST ${t} HTTP/1.1\r\n${H}${JSON_CT}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n1\r\n1\r\n0\r\n\r\n`,
          ),
        // Well framed, but the body is over the limit: 413, nothing started.
        () =>
          raw(
            'ingress',
            `${head}${(1024 * 1024 + 16).toString(16)}\r\n${'1'.repeat(1024 * 1024 + 16)}\r\n0\r\n\r\n`,
          ),
        () => raw('ingress', `${head}3\r\n{x}\r\n0\r\n\r\n`),
      ])();
    },
  },
  {
    name: 'raw-headers',
    valid: false,
    weight: 3,
    make: (r) => {
      const t = target(r);
      const surface: Surface = r.chance(0.2) ? 'admin' : 'ingress';
      const path = surface === 'admin' ? '/invocations' : t;
      return r.pick([
        () => raw(surface, `POST ${path} HTTP/1.1\r\n${JSON_CT}Content-Length: 1\r\n\r\n1`),
        () => raw(surface, `POST ${path} HTTP/1.1\r\n${H}${H}${JSON_CT}Content-Length: 1\r\n\r\n1`),
        () =>
          raw(
            surface,
            `GET ${path} HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(r.int(17_000, 100_000))}\r\n\r\n`,
          ),
        () =>
          raw(
            surface,
            `GET ${path} HTTP/1.1\r\n${H}${'X-A: 1\r\n'.repeat(r.int(2_000, 5_000))}\r\n`,
          ),
        () => raw(surface, `GET ${path} HTTP/1.1\r\n${H}X-Nul: a\0b\r\n\r\n`),
        () => raw(surface, `GET ${path} HTTP/1.1\r\n${H}X-Fold: a\r\n  b\r\n\r\n`),
        () => raw(surface, `GET ${path} HTTP/1.1\n${H.replace('\r', '')}\n`),
        () => raw(surface, `GET ${path} HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`),
        () => raw(surface, `GET ${path} HTTP/1.1\r\n${H}: empty-name\r\n\r\n`),
        () =>
          raw(
            surface,
            `POST ${path} HTTP/1.1\r\n${H}${JSON_CT}Expect: 100-continue\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`,
            r.chance(0.5),
          ),
        () =>
          raw(
            surface,
            `POST ${path} HTTP/1.1\r\n${H}Content-Type: ${'application/json;'.repeat(r.int(100, 2000))}\r\nContent-Length: 1\r\n\r\n1`,
          ),
      ])();
    },
  },
  {
    name: 'raw-request-line',
    valid: false,
    weight: 3,
    make: (r) => {
      const surface: Surface = r.chance(0.2) ? 'admin' : 'ingress';
      return r.pick([
        () => raw(surface, `GET /${'a'.repeat(r.int(10_000, 80_000))} HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET /invocations/${segment(r)}\0x HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET /a b HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET http://evil.example/health HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET health HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `OPTIONS * HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `CONNECT 127.0.0.1:1 HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET /health HTTP/1.0\r\n\r\n`),
        () => raw(surface, `GET /health HTTP/2.0\r\n${H}\r\n`),
        () => raw(surface, `GET /health HTTP/9.9\r\n${H}\r\n`),
        () => raw(surface, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        () => raw(surface, r.bytes(r.int(1, 300))),
        () => raw(surface, '\r\n\r\n\r\n'),
        () => raw(surface, `GET /health?${'%'.repeat(r.int(1, 100))} HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `GET /../../invocations HTTP/1.1\r\n${H}\r\n`),
        () => raw(surface, `G\u00e9T /health HTTP/1.1\r\n${H}\r\n`),
        () =>
          raw(
            surface,
            `POST /Counter/k1/add HTTP/1.1\r\n${H}${JSON_CT}Content-Length: 1\r\n\r\n`,
            true,
          ),
      ])();
    },
  },
];
