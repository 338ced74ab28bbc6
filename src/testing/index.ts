/**
 * What users import to test their own services: a fake clock.
 *
 * @example
 * ```ts
 * import { FakeClock } from 'keel/testing';
 * ```
 */
export { FakeClock, settle } from './fake-clock.js';
