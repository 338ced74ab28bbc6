/** Seed 001, exercise 2: the bank transfer orchestrator and the services it coordinates. */
import type { Definition } from '../../src/index.js';
import { BankAccounts } from './accounts.js';
import { BankAudit } from './audit.js';
import { BankCompliance } from './compliance.js';
import { BankFraudCheck } from './fraud.js';
import { BankNotifications } from './notifications.js';
import { TransferOrchestrator } from './orchestrator.js';

export {
  BankAccounts,
  BankAudit,
  BankCompliance,
  BankFraudCheck,
  BankNotifications,
  TransferOrchestrator,
};

/** Every definition of the bank transfer example. */
export const bankTransfer: Definition[] = [
  TransferOrchestrator,
  BankAccounts,
  BankFraudCheck,
  BankCompliance,
  BankAudit,
  BankNotifications,
];
