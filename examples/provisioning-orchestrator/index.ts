/** Seed 001, exercise 5: the tenant provisioning orchestrator and the services it coordinates. */
import type { Definition } from '../../src/index.js';
import { ProvisioningOrchestrator } from './orchestrator.js';
import {
  TenantAuth,
  TenantBilling,
  TenantDatabase,
  TenantMailer,
  TenantStorage,
} from './services.js';

export {
  ProvisioningOrchestrator,
  TenantAuth,
  TenantBilling,
  TenantDatabase,
  TenantMailer,
  TenantStorage,
};

/** Every definition of the tenant provisioning example. */
export const tenantProvisioning: Definition[] = [
  ProvisioningOrchestrator,
  TenantDatabase,
  TenantStorage,
  TenantAuth,
  TenantBilling,
  TenantMailer,
];
