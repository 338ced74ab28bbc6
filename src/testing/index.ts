/**
 * What users import to test their own services: `testApp` (an engine on a temporary SQLite
 * file with a fake clock, typed clients, assertions and time skipping; see docs/testing.md),
 * the fake clock itself, crash injection and crash testing (`checkCrashes`), failure injection
 * (`t.faults`), and mocks of integrations and webhooks.
 *
 * @example
 * ```ts
 * import { testApp } from 'keel/testing';
 *
 * await using t = await testApp({ services: [Counter] });
 * await t.object(Counter, 'visits').add(1);
 * ```
 */
export { FakeClock, settle } from './fake-clock.js';
export {
  testApp,
  TestApp,
  type TestAppOptions,
  type TestSendClient,
  type TestLogLine,
  type InvocationQuery,
  type RunUntilIdleOptions,
} from './test-app.js';
export { TestAppError, type TestAppErrorCode } from './errors.js';
export {
  mockReply,
  mockFail,
  mockTimeout,
  mockNetworkError,
  type MockAnswer,
  type TaggedAnswer,
  type Responder,
  type MockReplyOptions,
  type MockFailOptions,
} from './answers.js';
export {
  IntegrationMock,
  type MockCall,
  type MockResponders,
  type MockFunction,
  type OperationsOf,
} from './mocks.js';
export {
  TestWebhooks,
  type DeliverOptions,
  type DeliveryResponse,
  type SentWebhook,
  type SentFilter,
  type CaptureEndpoint,
  type CaptureEndpointOptions,
} from './webhooks.js';
export type { SignatureMode } from './webhook-signing.js';
export type { KitOptions } from './kit.js';
export type { ReplayFailure } from './replay-check.js';
export {
  checkCrashes,
  CrashCheckError,
  type CrashCheckOptions,
  type CrashMoment,
  type CrashPointReport,
  type CrashReport,
  type RerunStep,
} from './crash-check.js';
export {
  Faults,
  type Fault,
  type FailOptions,
  type DelayOptions,
  type CommitFaultOptions,
  type InjectedError,
} from './faults.js';

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
