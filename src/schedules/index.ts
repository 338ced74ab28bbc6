/**
 * Cron schedules (`keel/schedules`): declare them in code with `schedule()`, add them with
 * `schedules([...])` (or `startApp({ schedules })`), manage them at `/schedules` on the admin
 * API. See docs/schedules.md.
 */
export { schedule, MAX_CATCH_UP, MAX_JITTER_MS, MISSED_GRACE_MS } from './spec.js';
export type {
  MissedPolicy,
  ScheduleDeclaration,
  ScheduleOptions,
  ScheduleSpec,
  ScheduleTarget,
  TypedScheduleTarget,
} from './spec.js';
export { schedules } from './setup.js';
export type { Schedules, SchedulesOptions, ScheduleView, TriggerResult } from './setup.js';
export { ScheduleConflictError, ScheduleError, ScheduleNotFoundError } from './errors.js';
export type { ScheduleErrorCode } from './errors.js';
