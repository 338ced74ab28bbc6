/**
 * Shared by the connector tests: runtimes that are closed after each test, fast retries, and a
 * way to build the request a mock sees without going through a runtime.
 */
import { afterEach } from 'vitest';
import {
  IntegrationCallError,
  IntegrationRuntime,
  type IntegrationRuntimeOptions,
  type Connector,
  type ConnectorClient,
} from '../../../src/integrations/index.js';
import type { MockRequest } from '../../../src/integrations/mocks.js';

const open: IntegrationRuntime[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.close();
});

/** A runtime closed after the test; mock mode off unless asked, secrets from `env`. */
export function runtime(options: IntegrationRuntimeOptions = {}): IntegrationRuntime {
  const r = new IntegrationRuntime({ mock: false, log: () => undefined, ...options });
  open.push(r);
  return r;
}

/** Retries in milliseconds, so failure tests stay fast. */
export const FAST_RETRY = { maxAttempts: 3, initialInterval: 1, maxInterval: 5 } as const;

/** The error a call rejects with (fails the test if it resolves). */
export async function callError(p: Promise<unknown>): Promise<IntegrationCallError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof IntegrationCallError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

/** A request as a mock sees it. */
export function mockReq(
  method: MockRequest['method'],
  path: string,
  extra: Partial<Omit<MockRequest, 'method' | 'path'>> = {},
): MockRequest {
  return {
    integration: 'test',
    operation: 'test',
    method,
    path,
    query: {},
    headers: {},
    body: undefined,
    ...extra,
  };
}

/** A typed client of a connector. */
export function clientOf<C extends Connector<any>>(
  rt: IntegrationRuntime,
  connector: C,
): ConnectorClient<C> {
  return rt.client(connector) as unknown as ConnectorClient<C>;
}
