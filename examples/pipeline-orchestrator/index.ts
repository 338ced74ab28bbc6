/** Seed 001, exercise 4: the CI/CD pipeline orchestrator and the services it coordinates. */
import type { Definition } from '../../src/index.js';
import { PipelineBuild } from './build.js';
import { PipelineDeploy } from './deploy.js';
import { PipelineOrchestrator } from './orchestrator.js';
import { PipelineSecurity } from './security.js';
import { PipelineTests } from './tests.js';

export { PipelineBuild, PipelineDeploy, PipelineOrchestrator, PipelineSecurity, PipelineTests };

/** Every definition of the CI/CD pipeline example. */
export const deploymentPipeline: Definition[] = [
  PipelineOrchestrator,
  PipelineBuild,
  PipelineTests,
  PipelineSecurity,
  PipelineDeploy,
];
