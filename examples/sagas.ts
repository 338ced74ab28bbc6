import type { Definition } from '../src/index.js';
import { claimSaga } from './claim-saga/index.js';
import { deploymentSaga } from './deployment-saga/index.js';
import { migrationSaga } from './migration-saga/index.js';
import { moneyTransferSaga } from './money-transfer-saga/index.js';
import { orderSaga } from './order-saga/index.js';
import { ticketingSaga } from './ticketing-saga/index.js';

/**
 * Seed 002: every saga exercise and its downstream services (see "Seed 002 — sagas" in
 * examples/README.md): OrderSaga, MoneyTransferSaga, TicketingSaga, DeploymentSaga, ClaimSaga
 * and MigrationSaga.
 */
export const sagas: Definition[] = [
  ...orderSaga,
  ...moneyTransferSaga,
  ...ticketingSaga,
  ...deploymentSaga,
  ...claimSaga,
  ...migrationSaga,
];
