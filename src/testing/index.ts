/**
 * What users import to test their own services: a fake clock.
 *
 * @example
 * ```ts
 * import { FakeClock } from 'keel/testing';
 * ```
 */
export { FakeClock, settle } from './fake-clock.js';

import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';

/**
 * Crash injection: stops an engine as `kill -9` would (in-memory work is lost, nothing is
 * handed over, a cluster lease simply expires). Start a new engine on the same store to see
 * what recovery does.
 *
 * @example
 * ```ts
 * await crash(engine);
 * const recovered = new Engine({ services, store: openSqliteStore({ path }) });
 * await recovered.start();
 * ```
 */
export function crash(engine: Engine): Promise<void> {
  return kernelOf(engine).crash();
}
