import type { Definition } from '../src/index.js';
import { foodDelivery } from './delivery-orchestrator/index.js';
import { orderFulfillment } from './order-orchestrator/index.js';
import { deploymentPipeline } from './pipeline-orchestrator/index.js';
import { tenantProvisioning } from './provisioning-orchestrator/index.js';
import { bankTransfer } from './transfer-orchestrator/index.js';

/** Seed 001: every orchestration exercise and its downstream services. */
export const orchestrators: Definition[] = [
  ...orderFulfillment,
  ...bankTransfer,
  ...foodDelivery,
  ...deploymentPipeline,
  ...tenantProvisioning,
];
