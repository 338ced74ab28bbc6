import type { Definition } from '../../src/index.js';
import { ClaimPayouts } from './payouts.js';
import { ClaimPolicies } from './policies.js';
import { ClaimMedicalRecords } from './records.js';
import { ClaimSaga } from './saga.js';

export {
  ClaimSaga,
  APPROVAL_TIMEOUT,
  type Approval,
  type Claim,
  type ClaimResult,
} from './saga.js';
export { ClaimPolicies, DEMO_POLICIES, type ClaimStatus } from './policies.js';
export { ClaimMedicalRecords, NO_RECORDS_CUSTOMER } from './records.js';
export { ClaimPayouts, CLOSED_ACCOUNT_CUSTOMER } from './payouts.js';

/** Exercise 5: the claim saga, the policies, the medical records and the payouts. */
export const claimSaga: Definition[] = [
  ClaimSaga,
  ClaimPolicies,
  ClaimMedicalRecords,
  ClaimPayouts,
];
