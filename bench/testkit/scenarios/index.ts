/** The 100 scenarios of the test-kit comparison, by example (see ../README.md). */
import type { Scenario } from '../driver.js';
import { basics } from './basics.js';
import { claimScenarios } from './claim.js';
import { deploymentScenarios } from './deployment.js';
import { migrationScenarios } from './migration.js';
import { moneyTransferScenarios } from './money-transfer.js';
import { orderOrchestratorScenarios } from './order-orchestrator.js';
import { orderSagaScenarios } from './order-saga.js';
import { pipelineScenarios } from './pipeline.js';
import { ticketingScenarios } from './ticketing.js';
import { transferOrchestratorScenarios } from './transfer-orchestrator.js';

export const SUITES: Record<string, Scenario[]> = {
  basics,
  'order-saga': orderSagaScenarios,
  'money-transfer-saga': moneyTransferScenarios,
  'ticketing-saga': ticketingScenarios,
  'claim-saga': claimScenarios,
  'deployment-saga': deploymentScenarios,
  'migration-saga': migrationScenarios,
  'order-orchestrator': orderOrchestratorScenarios,
  'transfer-orchestrator': transferOrchestratorScenarios,
  'pipeline-orchestrator': pipelineScenarios,
};
