import type { Definition } from '../../src/index.js';
import { MigrationRouter } from './router.js';
import { MigrationSaga } from './saga.js';
import { MigrationTarget } from './target.js';

export {
  MigrationSaga,
  BATCHES,
  DEFAULT_BATCH_PAUSE,
  FORWARD_RETRY_INTERVAL,
  type Migration,
  type MigrationResult,
} from './saga.js';
export { MigrationRouter } from './router.js';
export { MigrationTarget, type VerificationReport } from './target.js';
export { batchChecksum } from './records.js';
export { FAULTY_SERVICES, FAILING_BATCH, CORRUPTED_BATCH, STUBBORN_ATTEMPTS } from './faults.js';

/** Exercise 6: the migration saga, the traffic router and the new system's copy. */
export const migrationSaga: Definition[] = [MigrationSaga, MigrationRouter, MigrationTarget];
