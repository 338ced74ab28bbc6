/**
 * Seed 000, exercise 5: GitHub deployments that wait for GitHub's `deployment_status` webhook.
 */
import type { Definition } from '../../src/index.js';
import type { Integration } from '../../src/integrations/index.js';
import type { ReceiverOptions } from '../../src/webhooks/index.js';
import { deploymentsGitHub, GitHubDeployment, GitHubDeploymentCallbacks } from './deployment.js';
import { deploymentReceivers } from './receivers.js';

export * from './deployment.js';
export * from './receivers.js';

/** The definitions the app serves for the deployment flow. */
export const definitions: Definition[] = [GitHubDeployment, GitHubDeploymentCallbacks];

/** The integrations its handlers use (the GitHub connector, named `GitHubDeployments`). */
export const integrations: Integration[] = [deploymentsGitHub];

/** The receiver to merge into the app's `webhooks.receivers` (`github`). */
export const receivers: Record<string, ReceiverOptions> = deploymentReceivers(process.env);
