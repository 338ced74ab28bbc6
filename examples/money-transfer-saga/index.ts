import type { Definition } from '../../src/index.js';
import { TransferAccounts } from './accounts.js';
import { TransferLedger } from './ledger.js';
import { MoneyTransferSaga } from './saga.js';

export { MoneyTransferSaga, type TransferRequest, type TransferResult } from './saga.js';
export {
  TransferAccounts,
  DEMO_ACCOUNTS,
  CLEARING_DELAY,
  EXTERNAL_BANK_PREFIX,
  type Transaction,
} from './accounts.js';
export { TransferLedger, LEDGER, type TransferRecord } from './ledger.js';

/** Exercise 2: the money transfer saga, the accounts and the transfer register. */
export const moneyTransferSaga: Definition[] = [
  MoneyTransferSaga,
  TransferAccounts,
  TransferLedger,
];
