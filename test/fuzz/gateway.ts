/**
 * The gateway the fuzz app serves at `/gateway/...`: two routes onto the fuzz services (a
 * service and a keyed object), typed request mapping, one API key. No rate limit on it: a
 * permit is a store write, and the fuzzer checks that invalid requests write nothing (the shared
 * limit has its own tests, test/gateway/ratelimit.test.ts).
 */
import { createGateway, type Gateway } from '../../src/gateway/index.js';

/** The fuzz app's API key. */
export const GATEWAY_KEY = 'fuzz-gateway-key-0123456789abcdef';

/** A small body limit, so a 413 is cheap to provoke. */
export const GATEWAY_BODY_LIMIT = 4096;

/** The `gateway` extension of the fuzz app. */
export function fuzzGateway(): Gateway {
  return createGateway({
    env: false,
    keys: [{ name: 'fuzz', key: GATEWAY_KEY }],
    rateLimit: false,
    bodyLimit: GATEWAY_BODY_LIMIT,
    routes: [
      {
        method: 'POST',
        path: '/v1/greet/:name',
        target: { service: 'Greeter', handler: 'greet' },
        // Greeter.greet takes a string: the input is the path's name itself, the answer shaped.
        requestMap: { '.': 'path.name' },
        responseMap: { greeting: 'result', via: { const: 'gateway' } },
      },
      {
        method: 'POST',
        path: '/v1/counters/:id/add',
        target: { service: 'Counter', handler: 'add', key: 'path.id' },
        // Counter.add takes a number.
        requestMap: { '.': { from: 'body.amount', type: 'integer', required: true } },
      },
    ],
  });
}
