/**
 * Migration 8: `invocations.trace`, the W3C `traceparent` an invocation's spans are children of
 * (see `InvocationRow.trace`), so an attempt that resumes in another process, or after a
 * restart, continues the invocation's trace. NULL for invocations without one.
 */
export const sql = /* sql */ `ALTER TABLE invocations ADD COLUMN trace TEXT;`;
