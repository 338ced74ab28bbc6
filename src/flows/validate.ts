/**
 * Checks a flow definition and compiles it (templates and expressions parsed once). Every
 * refusal is a {@link FlowDefinitionError} naming the step and field: an unknown step type, an
 * unknown integration, operation or transform, a `{{variable}}` read before a step stores it, a
 * duplicate step id, a cycle (a step that contains itself), a bad `onError`/`retries`.
 */
import { parseDuration } from '../core/duration.js';
import { FlowDefinitionError, type FlowDefinitionErrorCode } from './errors.js';
import { parseExpr, refsOf, type Expr, type Ref } from './expr.js';
import { compileTemplate, templateRefs, type Template } from './template.js';
import type { FlowDefinition, FlowOnError, FlowStepType } from './types.js';

/** What validation knows about the engine: what the steps may name. */
export interface FlowEnvironment {
  /** Operations by integration name; undefined when no integrations runtime is known. */
  integrations?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Databases by name and what they take (`sql` queries, `redis` commands, `any`); undefined
   * when none is known (then names are checked when the step runs).
   */
  databases?: ReadonlyMap<string, 'sql' | 'redis' | 'any'>;
  /** Names of the registered transform functions. */
  transforms: ReadonlySet<string>;
}

interface StepCommon {
  id: string;
  storeAs?: string;
  onError: FlowOnError;
  retries: number;
  backoff: { initialMs: number; maxMs: number; factor: number };
  timeoutMs?: number;
  compensate: CompiledStep[];
}

/** A step, checked and compiled. */
export type CompiledStep = StepCommon &
  (
    | {
        type: 'api';
        integration: string;
        operation: string;
        params: Template;
        body?: Template;
        headers?: Template;
      }
    | {
        type: 'database';
        database: string;
        query?: string;
        command?: string;
        args: Template;
      }
    | {
        type: 'event';
        bus: 'rabbitmq' | 'nats';
        destination: string;
        routingKey: string;
        payload: Template;
        headers?: Template;
      }
    | { type: 'transform'; fn?: string; expression?: Expr; input: Template }
    | { type: 'conditional'; condition: Expr; then: CompiledStep[]; else: CompiledStep[] }
  );

/** A definition, checked and compiled. */
export interface CompiledFlow {
  name: string;
  /** The definition as stored (plain JSON). */
  definition: FlowDefinition;
  steps: CompiledStep[];
  output?: Template;
}

const FLOW_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,99}$/;
const VARIABLE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const RESERVED = new Set(['input', 'steps', 'run', 'true', 'false', 'null']);
const TYPES: readonly FlowStepType[] = ['api', 'database', 'event', 'transform', 'conditional'];
const ON_ERROR: readonly FlowOnError[] = ['fail', 'continue', 'retry'];
const MAX_STEPS = 500;
const MAX_DEPTH = 64;
const MAX_NODES = 100_000;
const MAX_DEFINITION_CHARS = 256 * 1024;
/** Default retries with `onError: retry`, as the seed's `pRetry` default. */
const DEFAULT_RETRIES = 3;

const COMMON_FIELDS = [
  'id',
  'name',
  'type',
  'storeAs',
  'onError',
  'retries',
  'backoff',
  'timeout',
  'compensate',
  'description',
];
const FIELDS: Record<FlowStepType, string[]> = {
  api: ['integration', 'api', 'operation', 'params', 'body', 'headers'],
  database: ['database', 'query', 'params', 'command', 'args'],
  event: ['bus', 'destination', 'topic', 'routingKey', 'payload', 'params', 'headers'],
  transform: ['function', 'expression', 'input'],
  conditional: ['condition', 'then', 'else'],
};

/** Names in scope at a point of the flow. */
interface Scope {
  vars: Set<string>;
  steps: Set<string>;
}

/**
 * Validates and compiles a definition (a parsed JSON/YAML value).
 *
 * @example
 * ```ts
 * const flow = compileFlow(JSON.parse(text), { transforms: new Set(['total']) });
 * flow.steps[0].id; // 'reserve'
 * ```
 */
export function compileFlow(raw: unknown, env: FlowEnvironment): CompiledFlow {
  if (!isRecord(raw)) throw err('invalid_flow', 'a flow definition must be an object');
  // A definition given in code may hold anything: only a JSON tree goes further.
  checkTree(raw, [], undefined, { nodes: 0 });
  const text = JSON.stringify(raw);
  if (text.length > MAX_DEFINITION_CHARS)
    throw err(
      'invalid_flow',
      `a flow definition is at most ${MAX_DEFINITION_CHARS} characters of JSON`,
    );
  for (const k of Object.keys(raw)) {
    if (!['name', 'description', 'steps', 'output', 'version'].includes(k))
      throw err('invalid_flow', `unknown field "${k}" (known: name, description, steps, output)`, {
        field: k,
      });
  }
  if (typeof raw.name !== 'string' || !FLOW_NAME.test(raw.name))
    throw err(
      'invalid_flow',
      'the flow needs a "name" of letters, digits, "_", "." and "-", starting with a letter (at most 100)',
      { field: 'name' },
    );
  if (raw.description !== undefined && typeof raw.description !== 'string')
    throw err('invalid_flow', '"description" must be a string', { field: 'description' });
  if (!Array.isArray(raw.steps) || raw.steps.length === 0)
    throw err('invalid_flow', 'the flow needs "steps": a non-empty list', { field: 'steps' });
  const c = new Compiler(env);
  const scope: Scope = { vars: new Set(), steps: new Set() };
  const steps = c.list(raw.steps, scope, 'steps', new Set());
  let output: Template | undefined;
  if (raw.output !== undefined) {
    output = wrap(undefined, 'output', () => compileTemplate(raw.output));
    c.checkRefs(templateRefs(output), scope, undefined, 'output');
  }
  const definition = JSON.parse(text) as FlowDefinition;
  delete (definition as { version?: unknown }).version;
  return { name: raw.name, definition, steps, ...(output ? { output } : {}) };
}

class Compiler {
  private readonly ids = new Set<string>();
  private count = 0;
  constructor(private readonly env: FlowEnvironment) {}

  /** A list of steps (or one step), in order; `scope` grows with each. */
  list(raw: unknown, scope: Scope, where: string, ancestors: Set<object>): CompiledStep[] {
    const items = Array.isArray(raw) ? raw : [raw];
    if (Array.isArray(raw)) {
      if (ancestors.has(raw))
        throw err('flow_cycle', `"${where}" contains itself (a cycle)`, { field: where });
    }
    const inner = new Set(ancestors);
    if (Array.isArray(raw)) inner.add(raw);
    return items.map((s, i) => this.step(s, scope, `${where}[${i}]`, inner));
  }

  step(raw: unknown, scope: Scope, where: string, ancestors: Set<object>): CompiledStep {
    if (++this.count > MAX_STEPS)
      throw err('invalid_flow', `a flow has at most ${MAX_STEPS} steps (compensations included)`);
    if (!isRecord(raw)) throw err('invalid_flow', `${where} must be an object`, { step: where });
    const label =
      typeof raw.id === 'string' ? raw.id : typeof raw.name === 'string' ? raw.name : where;
    if (ancestors.has(raw))
      throw err('flow_cycle', `step "${label}" contains itself (a cycle)`, { step: label });
    const inner = new Set(ancestors).add(raw);
    const id = raw.id ?? raw.name;
    if (typeof id !== 'string' || id.length === 0 || id.length > 100 || hasControlOrBraces(id))
      throw err(
        'invalid_flow',
        `${where} needs an "id" (or "name"): 1-100 characters, without "{", "}" or control characters`,
        { step: label, field: 'id' },
      );
    if (this.ids.has(id))
      throw err('duplicate_step_id', `step id "${id}" is used twice; step ids must be unique`, {
        step: id,
      });
    this.ids.add(id);
    const type = raw.type;
    if (typeof type !== 'string' || !(TYPES as readonly string[]).includes(type))
      throw err(
        'unknown_step_type',
        `step "${id}": unknown type ${show(type)} (known: ${TYPES.join(', ')})`,
        { step: id, field: 'type' },
      );
    const t = type as FlowStepType;
    for (const k of Object.keys(raw)) {
      if (!COMMON_FIELDS.includes(k) && !FIELDS[t].includes(k))
        throw err(
          'invalid_flow',
          `step "${id}": unknown field "${k}" for a ${t} step (known: ${[...FIELDS[t], ...COMMON_FIELDS].join(', ')})`,
          { step: id, field: k },
        );
    }
    const common = this.common(raw, id);
    const specific = this.specific(raw, t, id, scope, inner);
    const step = { ...common, ...specific } as CompiledStep;
    // Compensations see everything this step could: its own output included.
    if (raw.compensate !== undefined) {
      const after = withStep(scope, step);
      step.compensate = this.list(raw.compensate, after, `${id}.compensate`, inner);
    }
    const added = withStep(scope, step);
    scope.vars = added.vars;
    scope.steps = added.steps;
    return step;
  }

  private common(raw: Record<string, unknown>, id: string): StepCommon {
    const out: StepCommon = {
      id,
      onError: 'fail',
      retries: 0,
      backoff: { initialMs: 100, maxMs: 10_000, factor: 2 },
      compensate: [],
    };
    if (raw.storeAs !== undefined) {
      if (
        typeof raw.storeAs !== 'string' ||
        !VARIABLE.test(raw.storeAs) ||
        RESERVED.has(raw.storeAs)
      )
        throw err(
          'invalid_flow',
          `step "${id}": storeAs must be a name (letters, digits, "_", not ${[...RESERVED].join('/')})`,
          { step: id, field: 'storeAs' },
        );
      out.storeAs = raw.storeAs;
    }
    if (raw.onError !== undefined) {
      if (typeof raw.onError !== 'string' || !(ON_ERROR as readonly string[]).includes(raw.onError))
        throw err(
          'invalid_on_error',
          `step "${id}": onError must be one of ${ON_ERROR.join(', ')}, not ${show(raw.onError)}`,
          { step: id, field: 'onError' },
        );
      out.onError = raw.onError as FlowOnError;
    }
    if (out.onError === 'retry') out.retries = DEFAULT_RETRIES;
    if (raw.retries !== undefined) {
      if (out.onError !== 'retry')
        throw err('invalid_on_error', `step "${id}": retries needs onError: retry`, {
          step: id,
          field: 'retries',
        });
      if (
        typeof raw.retries !== 'number' ||
        !Number.isInteger(raw.retries) ||
        raw.retries < 0 ||
        raw.retries > 100
      )
        throw err(
          'invalid_on_error',
          `step "${id}": retries must be a whole number from 0 to 100`,
          {
            step: id,
            field: 'retries',
          },
        );
      out.retries = raw.retries;
    }
    if (raw.backoff !== undefined) {
      if (out.onError !== 'retry')
        throw err('invalid_on_error', `step "${id}": backoff needs onError: retry`, {
          step: id,
          field: 'backoff',
        });
      if (!isRecord(raw.backoff))
        throw err('invalid_on_error', `step "${id}": backoff must be { initial, max, factor }`, {
          step: id,
          field: 'backoff',
        });
      for (const k of Object.keys(raw.backoff))
        if (!['initial', 'max', 'factor'].includes(k))
          throw err('invalid_on_error', `step "${id}": unknown backoff field "${k}"`, {
            step: id,
            field: 'backoff',
          });
      const b = raw.backoff;
      if (b.initial !== undefined)
        out.backoff.initialMs = duration(b.initial, id, 'backoff.initial');
      if (b.max !== undefined) out.backoff.maxMs = duration(b.max, id, 'backoff.max');
      if (b.factor !== undefined) {
        if (typeof b.factor !== 'number' || !(b.factor >= 1 && b.factor <= 10))
          throw err(
            'invalid_on_error',
            `step "${id}": backoff.factor must be a number from 1 to 10`,
            {
              step: id,
              field: 'backoff.factor',
            },
          );
        out.backoff.factor = b.factor;
      }
    }
    if (raw.timeout !== undefined) {
      out.timeoutMs = duration(raw.timeout, id, 'timeout');
      if (out.timeoutMs <= 0)
        throw err('invalid_flow', `step "${id}": timeout must be positive`, {
          step: id,
          field: 'timeout',
        });
    }
    return out;
  }

  private specific(
    raw: Record<string, unknown>,
    type: FlowStepType,
    id: string,
    scope: Scope,
    ancestors: Set<object>,
  ): Record<string, unknown> {
    const tpl = (field: string, value: unknown): Template => {
      const t = wrap(id, field, () => compileTemplate(value));
      this.checkRefs(templateRefs(t), scope, id, field);
      return t;
    };
    const str = (field: string, value: unknown): string => {
      if (typeof value !== 'string' || value.length === 0)
        throw err('invalid_flow', `step "${id}": "${field}" must be a non-empty string`, {
          step: id,
          field,
        });
      return value;
    };
    switch (type) {
      case 'api': {
        if (raw.integration !== undefined && raw.api !== undefined)
          throw err('invalid_flow', `step "${id}": give "integration" or "api", not both`, {
            step: id,
            field: 'api',
          });
        const integration = str('integration', raw.integration ?? raw.api);
        const operation = str('operation', raw.operation);
        const known = this.env.integrations;
        if (known) {
          const ops = known.get(integration);
          if (!ops)
            throw err(
              'unknown_integration',
              `step "${id}": no integration named "${integration}" (declared: ${[...known.keys()].join(', ') || 'none'})`,
              { step: id, field: 'integration' },
            );
          if (!ops.has(operation))
            throw err(
              'unknown_operation',
              `step "${id}": integration "${integration}" has no operation "${operation}" (it has: ${[...ops].join(', ')})`,
              { step: id, field: 'operation' },
            );
        }
        if (raw.params !== undefined && !isRecord(raw.params))
          throw err('invalid_flow', `step "${id}": "params" must be an object`, {
            step: id,
            field: 'params',
          });
        if (raw.headers !== undefined && !isRecord(raw.headers))
          throw err('invalid_flow', `step "${id}": "headers" must be an object`, {
            step: id,
            field: 'headers',
          });
        return {
          type,
          integration,
          operation,
          params: tpl('params', raw.params ?? {}),
          ...(raw.body !== undefined ? { body: tpl('body', raw.body) } : {}),
          ...(raw.headers !== undefined ? { headers: tpl('headers', raw.headers) } : {}),
        };
      }
      case 'database': {
        const database = str('database', raw.database);
        const dbs = this.env.databases;
        const kind = dbs?.get(database);
        if (dbs && kind === undefined)
          throw err(
            'unknown_database',
            `step "${id}": no database named "${database}" (declared: ${[...dbs.keys()].join(', ') || 'none'})`,
            { step: id, field: 'database' },
          );
        if (
          (kind === 'sql' && raw.command !== undefined) ||
          (kind === 'redis' && raw.query !== undefined)
        )
          throw err(
            'invalid_flow',
            `step "${id}": database "${database}" is ${kind === 'sql' ? 'SQL: give a "query"' : 'Redis: give a "command"'}`,
            { step: id, field: kind === 'sql' ? 'command' : 'query' },
          );
        if ((raw.query === undefined) === (raw.command === undefined))
          throw err(
            'invalid_flow',
            `step "${id}": give "query" (SQL) or "command" (Redis), one of them`,
            {
              step: id,
              field: 'query',
            },
          );
        if (raw.query !== undefined) {
          if (raw.args !== undefined)
            throw err('invalid_flow', `step "${id}": a query takes "params", not "args"`, {
              step: id,
              field: 'args',
            });
          if (raw.params !== undefined && !Array.isArray(raw.params))
            throw err('invalid_flow', `step "${id}": "params" of a query must be a list`, {
              step: id,
              field: 'params',
            });
          return {
            type,
            database,
            query: str('query', raw.query),
            args: tpl('params', raw.params ?? []),
          };
        }
        if (raw.params !== undefined)
          throw err('invalid_flow', `step "${id}": a command takes "args", not "params"`, {
            step: id,
            field: 'params',
          });
        if (raw.args !== undefined && !Array.isArray(raw.args))
          throw err('invalid_flow', `step "${id}": "args" must be a list`, {
            step: id,
            field: 'args',
          });
        return {
          type,
          database,
          command: str('command', raw.command),
          args: tpl('args', raw.args ?? []),
        };
      }
      case 'event': {
        if (raw.bus !== 'rabbitmq' && raw.bus !== 'nats')
          throw err('invalid_flow', `step "${id}": "bus" must be "rabbitmq" or "nats"`, {
            step: id,
            field: 'bus',
          });
        if (raw.destination !== undefined && raw.topic !== undefined)
          throw err('invalid_flow', `step "${id}": give "destination" or "topic", not both`, {
            step: id,
            field: 'topic',
          });
        if (raw.payload !== undefined && raw.params !== undefined)
          throw err('invalid_flow', `step "${id}": give "payload" or "params", not both`, {
            step: id,
            field: 'params',
          });
        if (raw.routingKey !== undefined && typeof raw.routingKey !== 'string')
          throw err('invalid_flow', `step "${id}": "routingKey" must be a string`, {
            step: id,
            field: 'routingKey',
          });
        if (raw.headers !== undefined && !isRecord(raw.headers))
          throw err('invalid_flow', `step "${id}": "headers" must be an object`, {
            step: id,
            field: 'headers',
          });
        return {
          type,
          bus: raw.bus,
          destination:
            raw.destination === '' && raw.bus === 'rabbitmq'
              ? ''
              : str('destination', raw.destination ?? raw.topic),
          routingKey: raw.routingKey ?? '',
          payload: tpl('payload', raw.payload ?? raw.params ?? null),
          ...(raw.headers !== undefined ? { headers: tpl('headers', raw.headers) } : {}),
        };
      }
      case 'transform': {
        if ((raw.function === undefined) === (raw.expression === undefined))
          throw err(
            'invalid_flow',
            `step "${id}": give "function" (a registered transform) or "expression", one of them`,
            {
              step: id,
              field: 'function',
            },
          );
        if (raw.function !== undefined) {
          const fn = str('function', raw.function);
          if (!this.env.transforms.has(fn))
            throw err(
              'unknown_transform',
              `step "${id}": no transform function named "${fn}" (registered: ${[...this.env.transforms].join(', ') || 'none'}); register it with createFlows({ transforms })`,
              { step: id, field: 'function' },
            );
          return { type, fn, input: tpl('input', raw.input ?? null) };
        }
        const source = stripBraces(str('expression', raw.expression));
        const expression = wrap(id, 'expression', () => parseExpr(source));
        this.checkRefs(refsOf(expression), scope, id, 'expression');
        if (raw.input !== undefined)
          throw err(
            'invalid_flow',
            `step "${id}": an expression reads the variables itself; "input" is for a function`,
            {
              step: id,
              field: 'input',
            },
          );
        return { type, expression, input: { k: 'value', v: null } };
      }
      case 'conditional': {
        let condition: Expr;
        if (typeof raw.condition === 'boolean') condition = { k: 'lit', v: raw.condition };
        else {
          const source = stripBraces(str('condition', raw.condition));
          condition = wrap(id, 'condition', () => parseExpr(source));
          this.checkRefs(refsOf(condition), scope, id, 'condition');
        }
        if (raw.then === undefined && raw.else === undefined)
          throw err('invalid_flow', `step "${id}": a conditional needs "then" or "else" steps`, {
            step: id,
            field: 'then',
          });
        // Each branch starts from the scope before it; after the step, only what both set.
        const a = copy(scope);
        const b = copy(scope);
        const then = raw.then === undefined ? [] : this.list(raw.then, a, `${id}.then`, ancestors);
        const otherwise =
          raw.else === undefined ? [] : this.list(raw.else, b, `${id}.else`, ancestors);
        for (const v of a.vars) if (b.vars.has(v)) scope.vars.add(v);
        for (const s of a.steps) if (b.steps.has(s)) scope.steps.add(s);
        return { type, condition, then, else: otherwise };
      }
    }
  }

  checkRefs(refs: Ref[], scope: Scope, step: string | undefined, field: string): void {
    const at = step === undefined ? `the flow's ${field}` : `step "${step}"`;
    for (const r of refs) {
      if (r.root === 'input' || r.root === 'run') continue;
      if (r.root === 'steps') {
        if (r.member !== undefined && !scope.steps.has(r.member))
          throw err(
            'undefined_variable',
            `${at} (${field}) reads steps.${r.member} before that step ran: refer only to steps that come earlier (in both branches of a conditional)`,
            { ...(step === undefined ? {} : { step }), field },
          );
        continue;
      }
      if (!scope.vars.has(r.root))
        throw err(
          'undefined_variable',
          `${at} (${field}) uses {{${r.root}}} before it is stored: set storeAs: ${r.root} on an earlier step, or use input.${r.root}`,
          { ...(step === undefined ? {} : { step }), field },
        );
    }
  }
}

/**
 * Refuses what is not a JSON tree: a cycle (`flow_cycle`, naming the step it runs through), a
 * function, a symbol, a bigint, a non-finite number, nesting deeper than {@link MAX_DEPTH}.
 */
function checkTree(
  v: unknown,
  path: object[],
  step: string | undefined,
  count: { nodes: number },
): void {
  // Shared (not cyclic) references can still make a tree of exponential size.
  if (++count.nodes > MAX_NODES)
    throw err('invalid_flow', `a flow definition has at most ${MAX_NODES} values`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v))
      throw err('invalid_flow', `${where(step)}holds a number that is not finite`, at(step));
    return;
  }
  if (typeof v !== 'object')
    throw err('invalid_flow', `${where(step)}holds a ${typeof v}, which is not JSON`, at(step));
  if (path.includes(v))
    throw err('flow_cycle', `${where(step)}contains itself (a cycle)`, at(step));
  if (path.length >= MAX_DEPTH)
    throw err('invalid_flow', `${where(step)}is nested deeper than ${MAX_DEPTH}`, at(step));
  const rec = v as Record<string, unknown>;
  const id = !Array.isArray(v) && typeof rec.type === 'string' ? (rec.id ?? rec.name) : undefined;
  const inner = typeof id === 'string' ? id : step;
  path.push(v);
  for (const x of Object.values(v)) {
    if (x === undefined) continue;
    checkTree(x, path, inner, count);
  }
  path.pop();
}

const where = (step: string | undefined): string =>
  step === undefined ? 'the flow ' : `step "${step}" `;
const at = (step: string | undefined) => (step === undefined ? {} : { step });

/** A value for a message: JSON, cut short. */
function show(v: unknown): string {
  let t: string;
  try {
    t = JSON.stringify(v) ?? String(v);
  } catch {
    t = String(v);
  }
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
}

/** The scope after `step` ran: its id, and its variable. */
function withStep(scope: Scope, step: CompiledStep): Scope {
  const out = copy(scope);
  out.steps.add(step.id);
  if (step.storeAs) out.vars.add(step.storeAs);
  return out;
}

function copy(scope: Scope): Scope {
  return { vars: new Set(scope.vars), steps: new Set(scope.steps) };
}

/** `{{ expr }}` → `expr`: conditions and expressions may be written either way. */
function stripBraces(s: string): string {
  const t = s.trim();
  return t.startsWith('{{') && t.endsWith('}}') && t.indexOf('{{', 2) === -1 ? t.slice(2, -2) : t;
}

function duration(v: unknown, step: string, field: string): number {
  if (typeof v !== 'string' && typeof v !== 'number')
    throw err(
      'invalid_flow',
      `step "${step}": ${field} must be a duration ("500ms", "10s", "1m")`,
      {
        step,
        field,
      },
    );
  try {
    return parseDuration(v);
  } catch (e) {
    throw err('invalid_flow', `step "${step}": ${field}: ${(e as Error).message}`, { step, field });
  }
}

/** Re-throws an expression error with the step and field it is in. */
function wrap<T>(step: string | undefined, field: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FlowDefinitionError && e.step === undefined) {
      const at = step === undefined ? `the flow's ${field}` : `step "${step}" (${field})`;
      throw err(e.code as FlowDefinitionErrorCode, `${at}: ${e.message}`, {
        ...(step === undefined ? {} : { step }),
        field,
      });
    }
    throw e;
  }
}

function err(
  code: FlowDefinitionErrorCode,
  message: string,
  where: { step?: string; field?: string } = {},
): FlowDefinitionError {
  return new FlowDefinitionError(code, message, where);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Ids become journal entry names and header values: no control characters, no braces. */
function hasControlOrBraces(id: string): boolean {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x7b || c === 0x7d) return true;
  }
  return false;
}
