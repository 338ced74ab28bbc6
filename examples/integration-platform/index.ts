/**
 * The capstone of seed 004, "integration platform": a gateway (API keys, a per-key rate limit
 * shared across processes, request/response mapping) in front of a declarative workflow and
 * TypeScript workflows, calling 120 declared external services. See README.md.
 */
import type { Definition } from '../../src/index.js';
import type { EngineExtension } from '../../src/engine/extension.js';
import { createFlows, type FlowsOptions } from '../../src/flows/index.js';
import type { GatewayOptions } from '../../src/gateway/index.js';
import { flowDefinitions } from './flows.js';
import { platformGateway } from './gateway.js';
import { Fulfilment, OrderIntake, Platform } from './workflows.js';

export { KINDS, REGIONS, SERVICE_NAMES, serviceList, services } from './catalog.js';
export type { Operation, ServiceName } from './catalog.js';
export { answer, priceOf, startFakeServices } from './fake.js';
export type { FakeHit, FakeServices } from './fake.js';
export { flowDefinitions, orderIntake } from './flows.js';
export { platformGateway, routes } from './gateway.js';
export { Fulfilment, OrderIntake, Platform } from './workflows.js';
export type { OrderInput } from './workflows.js';

/** The definitions the app must serve. */
export const definitions: Definition[] = [OrderIntake, Fulfilment, Platform];

/** The 120 external services (for `startApp({ integrations })`). */
export { serviceList as integrations } from './catalog.js';

/**
 * The platform's extensions: its gateway and the flows extension with its flow. An app that has
 * `createFlows()` already passes `flowDefinitions` to it and takes only the gateway.
 */
export function extensions(
  options: { gateway?: Partial<GatewayOptions>; flows?: FlowsOptions } = {},
): EngineExtension[] {
  return [
    platformGateway(options.gateway),
    createFlows({
      ...options.flows,
      definitions: [...flowDefinitions, ...(options.flows?.definitions ?? [])],
    }),
  ];
}
