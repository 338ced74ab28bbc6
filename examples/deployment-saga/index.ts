import type { Definition } from '../../src/index.js';
import { DeployDns } from './dns.js';
import { DeployEnvironments } from './environments.js';
import { DeployTestRunner } from './integration-tests.js';
import { DeployLogs } from './logs.js';
import { DeploymentSaga } from './saga.js';

export { DeploymentSaga, type DeploymentRequest, type DeploymentResult } from './saga.js';
export {
  DeployEnvironments,
  INITIAL_RELEASE,
  type Release,
  type HistoryEntry,
} from './environments.js';
export { DeployTestRunner, SUITE, type TestReport } from './integration-tests.js';
export { DeployDns, HOSTNAME } from './dns.js';
export { DeployLogs, type LogLine } from './logs.js';
export { FAULTS } from './faults.js';

/** Exercise 4: the deployment saga, the environments, the test runner, DNS and the logs. */
export const deploymentSaga: Definition[] = [
  DeploymentSaga,
  DeployEnvironments,
  DeployTestRunner,
  DeployDns,
  DeployLogs,
];
