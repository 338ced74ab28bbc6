/**
 * Service ids that make one phase of a migration fail, so every path can be tried by hand:
 * migrate `"serviceId":"svc-fail-batch"` to see a partial migration rolled back, and so on.
 */
export const FAULTY_SERVICES = {
  /** Batch {@link FAILING_BATCH} is refused by the new system's schema. */
  batch: 'svc-fail-batch',
  /** Batch {@link CORRUPTED_BATCH} is copied with a wrong checksum: verification fails. */
  corrupt: 'svc-corrupt',
  /** The load balancer refuses the traffic switch: manual intervention. */
  switch: 'svc-fail-switch',
  /** The old system refuses to shut down {@link STUBBORN_ATTEMPTS} times: forward recovery. */
  stubborn: 'svc-stubborn-old',
} as const;

export const FAILING_BATCH = 42;
export const CORRUPTED_BATCH = 7;
export const STUBBORN_ATTEMPTS = 2;
