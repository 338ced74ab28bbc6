/**
 * Declarative workflows (`keel/flows`): flows written as JSON or YAML — `api`, `database`,
 * `event`, `transform` and `conditional` steps, `storeAs` variables, `onError`, compensations —
 * validated when registered, versioned in the store, and run by the engine as durable
 * workflows. See docs/flows.md.
 *
 * @example
 * ```ts
 * import { createFlows, runFlow } from 'keel/flows';
 *
 * const app = await startApp({ services, integrations, extensions: [createFlows({ dir: 'flows' })] });
 * const result = await runFlow(app.engine, 'order-saga', { orderId: 'o-1', amount: 42 });
 * result.success; // false when a step failed; result.compensated lists what was undone
 * ```
 */
export { createFlows } from './setup.js';
export type { Flows, FlowsOptions } from './setup.js';
export { runFlow } from './run.js';
export type { RunFlowOptions } from './run.js';
export { FlowsWorkflow, FLOWS_WORKFLOW } from './execute.js';
export type { FlowRunInput, FlowRunState } from './execute.js';
export { FlowsRuntime } from './runtime.js';
export type { FlowDatabase, FlowTransform } from './runtime.js';
export { FlowRegistry } from './registry.js';
export type { Registration } from './registry.js';
export { parseFlowText } from './parse.js';
export type { FlowFormat } from './parse.js';
export { parseExpr, evaluate, FUNCTIONS } from './expr.js';
export { compileFlow } from './validate.js';
export type { FlowEnvironment, CompiledFlow } from './validate.js';
export {
  FlowDefinitionError,
  FlowNotFoundError,
  FlowStepError,
  FlowExpressionError,
} from './errors.js';
export type { FlowDefinitionErrorCode } from './errors.js';
export type * from './types.js';
