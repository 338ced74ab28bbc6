/**
 * The errors of declarative flows, each with a stable code. Definition errors name the step
 * (and the field) that is wrong, so an author can fix the file without guessing.
 */
import { KeelError, registerErrorClass, TerminalError } from '../core/errors.js';

/** Codes of {@link FlowDefinitionError}: what was wrong with a definition. */
export type FlowDefinitionErrorCode =
  | 'invalid_flow'
  | 'flow_parse_error'
  | 'unknown_step_type'
  | 'unknown_integration'
  | 'unknown_operation'
  | 'unknown_transform'
  | 'unknown_database'
  | 'undefined_variable'
  | 'duplicate_step_id'
  | 'flow_cycle'
  | 'invalid_on_error'
  | 'invalid_expression';

/**
 * A flow definition was refused (at registration, from a file at start or `POST
 * /flows/definitions`). `step` names the step (its id, or its position when it has none),
 * `field` the field. HTTP 400.
 *
 * @example
 * ```ts
 * try {
 *   await flows.register(def);
 * } catch (err) {
 *   if (err instanceof FlowDefinitionError) console.error(err.code, err.step, err.message);
 * }
 * ```
 */
export class FlowDefinitionError extends TerminalError {
  readonly step?: string;
  readonly field?: string;
  constructor(
    code: FlowDefinitionErrorCode,
    message: string,
    where: { step?: string; field?: string } = {},
  ) {
    super(message, { code, status: 400 });
    if (where.step !== undefined) this.step = where.step;
    if (where.field !== undefined) this.field = where.field;
  }
}

/** No flow (or no such version of it) is registered. HTTP 404. */
export class FlowNotFoundError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'flow_not_found', status: 404 });
  }
}

/**
 * A step of a running flow failed: recorded in the journal with the step's id and the original
 * error's code, and reported in `WorkflowResult.errors`.
 */
export class FlowStepError extends TerminalError {
  readonly step: string;
  readonly errorCode: string;
  constructor(step: string, errorCode: string, message: string) {
    super(message, { code: 'flow_step_failed', status: 500 });
    this.step = step;
    this.errorCode = errorCode;
  }
}

/** An expression or a template could not be evaluated (a type error at run time). */
export class FlowExpressionError extends TerminalError {
  constructor(message: string) {
    super(message, { code: 'flow_expression_failed', status: 500 });
  }
}

registerErrorClass(FlowDefinitionError, [
  'invalid_flow',
  'flow_parse_error',
  'unknown_step_type',
  'unknown_integration',
  'unknown_operation',
  'unknown_transform',
  'unknown_database',
  'undefined_variable',
  'duplicate_step_id',
  'flow_cycle',
  'invalid_on_error',
  'invalid_expression',
]);
registerErrorClass(FlowNotFoundError, ['flow_not_found']);
registerErrorClass(FlowStepError, ['flow_step_failed']);
registerErrorClass(FlowExpressionError, ['flow_expression_failed']);
