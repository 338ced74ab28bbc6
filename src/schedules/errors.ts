/**
 * The errors of cron schedules, each with a stable code. A refused schedule says which field is
 * wrong and what would be accepted, so the declaration or the admin request can be fixed at once.
 */
import { KeelError, registerErrorClass, TerminalError } from '../core/errors.js';

/** Codes of {@link ScheduleError}. */
export type ScheduleErrorCode =
  /** A field other than the cron pattern, the timezone and the target is wrong. HTTP 400. */
  | 'invalid_schedule'
  /** The cron pattern does not parse, or never fires. HTTP 400. */
  | 'invalid_cron'
  /** Not an IANA timezone name. HTTP 400. */
  | 'invalid_timezone'
  /** The target names no registered service, handler or key form. HTTP 400. */
  | 'unknown_target'
  /** The input does not match the target handler's input schema. HTTP 400. */
  | 'invalid_input';

/**
 * A schedule was refused: by `schedule()` (a bug in the declaration), when the engine starts (its
 * target is not registered), or by `POST /schedules` (nothing is stored). `field` names the
 * field. HTTP 400.
 *
 * @example
 * ```ts
 * try {
 *   schedule({ name: 'nightly', cron: '0 25 * * *', target: { service: 'Reports', handler: 'run' } });
 * } catch (err) {
 *   if (err instanceof ScheduleError) console.error(err.code, err.field); // invalid_cron cron
 * }
 * ```
 */
export class ScheduleError extends TerminalError {
  readonly field?: string;
  constructor(code: ScheduleErrorCode, message: string, field?: string) {
    super(message, { code, status: 400 });
    if (field !== undefined) this.field = field;
  }
}

/** No schedule of that name is stored. HTTP 404. */
export class ScheduleNotFoundError extends KeelError {
  constructor(name: string) {
    super(`no schedule named "${name}": GET /schedules lists them`, {
      code: 'schedule_not_found',
      status: 404,
    });
  }
}

/**
 * The change conflicts with what is stored: a schedule of that name exists already
 * (`schedule_exists`), or it is declared in code (`schedule_in_code`), which only a change of
 * the code (and a restart) may delete. HTTP 409.
 */
export class ScheduleConflictError extends TerminalError {
  constructor(code: 'schedule_exists' | 'schedule_in_code', message: string) {
    super(message, { code, status: 409 });
  }
}

registerErrorClass(ScheduleError, [
  'invalid_schedule',
  'invalid_cron',
  'invalid_timezone',
  'unknown_target',
  'invalid_input',
]);
registerErrorClass(ScheduleNotFoundError, ['schedule_not_found']);
registerErrorClass(ScheduleConflictError, ['schedule_exists', 'schedule_in_code']);
