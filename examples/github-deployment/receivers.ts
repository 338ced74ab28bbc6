/**
 * The `github` receiver: `POST /webhooks/github` on the ingress, verified with
 * `X-Hub-Signature-256` (401 and no state change otherwise), deduplicated on
 * `X-GitHub-Delivery` and on the body's hash. `deployment_status` events go to the
 * `GitHubDeploymentCallbacks` object of their deployment id; other events are acknowledged
 * and ignored.
 *
 * The secret is `GITHUB_WEBHOOK_SECRET`; without it, the DEMO value below, published in
 * examples/github-deployment/README.md so a webhook can be signed by hand. Never use it for a
 * real webhook.
 */
import type { ReceiverOptions } from '../../src/webhooks/index.js';
import { GitHubDeploymentCallbacks } from './deployment.js';

/** Demo GitHub webhook secret (`GITHUB_WEBHOOK_SECRET`). */
export const DEMO_GITHUB_WEBHOOK_SECRET = 'keel-demo-github';

/**
 * The `github` receiver, with its secret from `env` (the demo secret when unset).
 *
 * @example
 * ```ts
 * await startApp({
 *   services: [GitHubDeployment, GitHubDeploymentCallbacks],
 *   integrations: [deploymentsGitHub],
 *   webhooks: { receivers: deploymentReceivers(process.env) },
 * });
 * ```
 */
export function deploymentReceivers(
  env: Record<string, string | undefined> = process.env,
): Record<string, ReceiverOptions> {
  return {
    github: {
      provider: 'github',
      secret: env.GITHUB_WEBHOOK_SECRET ?? DEMO_GITHUB_WEBHOOK_SECRET,
      route: (e) => {
        if (e.type !== 'deployment_status') return null;
        const id = (e.data as { deployment?: { id?: unknown } }).deployment?.id;
        if (typeof id !== 'number' && typeof id !== 'string') return null;
        return { target: GitHubDeploymentCallbacks, key: String(id), handler: 'onStatus' };
      },
    },
  };
}
