/**
 * How to make a deployment fail on purpose: put one of these words in the image tag, e.g.
 * `"imageTag":"shop:2.0.0-failing-tests"`. Each downstream service checks for its own.
 */
export const FAULTS = {
  /** The staging rollout fails (nothing to roll back). */
  stagingDeploy: 'broken-staging',
  /** The integration tests fail on staging (staging is rolled back). */
  integrationTests: 'failing-tests',
  /** The production rollout fails (staging is rolled back). */
  productionDeploy: 'broken-production',
  /** The DNS update fails (production, then staging, are rolled back). */
  dnsUpdate: 'bad-dns',
} as const;

/** True when the image tag asks for the given fault. */
export function wants(imageTag: string, fault: keyof typeof FAULTS): boolean {
  return imageTag.includes(FAULTS[fault]);
}
