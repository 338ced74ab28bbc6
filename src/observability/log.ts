/**
 * Keel's logger: pino, one JSON object per line (human-readable on a terminal), with each
 * invocation's `invocationId`, `service`, `handler`, `key` and the active OpenTelemetry span's
 * `traceId`/`spanId` on its lines, and secrets redacted.
 *
 * The engine takes any {@link EngineLogFn} (`EngineOptions.logger`); {@link toEngineLogger}
 * makes one of a pino logger, and is what an engine and `startApp` use by default.
 */
import { createRequire } from 'node:module';
import { format } from 'node:util';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../core/context.js';
import { KeelError } from '../core/errors.js';
import { isPlainObject, REDACTED, redactDeep, redactPaths, SECRET_FIELDS } from './redact.js';

/** Log levels, most verbose first; `silent` writes nothing. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

/** A log level (`KEEL_LOG_LEVEL`). */
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The engine's log sink, structurally `EngineLogger`: a level, a message, and the line's fields
 * (an invocation's `invocationId`, `service`, `handler`, `key`, `target`; a `ctx.log` call's
 * extra arguments under `args`).
 */
export type EngineLogFn = (
  level: keyof Logger,
  message: string,
  fields: Record<string, unknown>,
) => void;

/** Where lines go: anything with a `write(line)`, e.g. `pino.destination(...)` or a stream. */
export type LogDestination = DestinationStream;

/** A log level that is not one of {@link LOG_LEVELS} (`invalid_log_level`). */
export class LogLevelError extends KeelError {
  constructor(
    readonly value: string,
    readonly source: string,
  ) {
    super(
      `${source}="${value}" is not a log level: use one of ${LOG_LEVELS.join(', ')} (default info)`,
      { code: 'invalid_log_level', status: 400 },
    );
  }
}

/**
 * Checks a log level, as `KEEL_LOG_LEVEL` or the `logLevel` option gives it (any case).
 *
 * @example
 * ```ts
 * parseLogLevel('WARN'); // 'warn'
 * parseLogLevel('loud', 'KEEL_LOG_LEVEL'); // throws LogLevelError: KEEL_LOG_LEVEL="loud" is not a log level: ...
 * ```
 */
export function parseLogLevel(value: string, source = 'logLevel'): LogLevel {
  const level = value.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(level)) return level as LogLevel;
  throw new LogLevelError(value, source);
}

/** Options of {@link createLogger}; every field documents its default. */
export interface LogOptions {
  /** The least severe level written. Default `info`. */
  level?: LogLevel;
  /**
   * Where lines go. Default: standard output, written synchronously (so no line is lost when
   * the process exits or is killed right after writing it).
   */
  destination?: LogDestination;
  /**
   * Human-readable lines (pino-pretty) instead of JSON. Default: when lines go to standard
   * output and it is a terminal.
   */
  pretty?: boolean;
  /** More field names to redact, besides Keel's (see `SECRET_FIELDS`). Default none. */
  redact?: readonly string[];
}

/**
 * A pino logger writing Keel's JSON lines: `level` as a name, `time` as ISO-8601, the active
 * span's `traceId` and `spanId`, and secret fields replaced by `[Redacted]`.
 *
 * @example
 * ```ts
 * import { createLogger, toEngineLogger, Engine } from 'keel';
 *
 * const log = createLogger({ level: 'debug' });
 * const engine = new Engine({ services: [Greeter], store, logger: toEngineLogger(log) });
 * log.info({ port: 9080 }, 'listening'); // {"level":"info","time":"...","port":9080,"msg":"listening"}
 * ```
 */
export function createLogger(options: LogOptions = {}): PinoLogger {
  const level = parseLogLevel(options.level ?? 'info');
  const pretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY);
  const out = options.destination ?? stdout();
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: redactPaths([...SECRET_FIELDS, ...(options.redact ?? [])]),
        censor: REDACTED,
      },
      formatters: {
        level: (label) => ({ level: label }),
        // Any depth, any spelling: what the exact `redact` paths above cannot name.
        log: (fields) => redactDeep(fields),
      },
      mixin: traceFields,
    },
    pretty ? prettyStream(out) : out,
  );
}

/**
 * The engine's log sink writing to a pino logger: each line's fields, with a `ctx.log` call's
 * arguments merged in (plain objects as fields, an Error as `err`, anything else formatted into
 * the message, `%s`-style placeholders too), secrets redacted.
 *
 * @example
 * ```ts
 * const engine = new Engine({
 *   services: [Greeter],
 *   store,
 *   logger: toEngineLogger(createLogger({ level: 'warn' })),
 * });
 * ```
 */
export function toEngineLogger(logger: PinoLogger): EngineLogFn {
  return (level, message, fields) => {
    const { args, target, ...rest } = fields;
    const line = withArgs(message, Array.isArray(args) ? (args as unknown[]) : []);
    // The invocation's own fields last: a handler's `{ invocationId }` cannot hide them.
    const obj: Record<string, unknown> = { ...line.fields, ...rest };
    if (typeof target === 'string') obj.target = target;
    logger[level](obj, line.msg);
  };
}

/**
 * The engine logger an engine uses when given none: {@link createLogger}'s defaults (`info`,
 * standard output, pretty on a terminal).
 *
 * @example
 * ```ts
 * const engine = new Engine({ services, store, logger: keelLogger({ level: 'debug' }) });
 * ```
 */
export function keelLogger(options: LogOptions = {}): EngineLogFn {
  return toEngineLogger(createLogger(options));
}

let defaultLogger: EngineLogFn | undefined;

/** One `keelLogger()` shared by everything that was given no logger (engines, runtimes). */
export function defaultEngineLogger(): EngineLogFn {
  return (defaultLogger ??= keelLogger());
}

const PLACEHOLDER = /%[sdifjoOc]/;

/** A `ctx.log` call's message and arguments as a line's message and fields. */
function withArgs(
  message: string,
  args: unknown[],
): { msg: string; fields: Record<string, unknown> } {
  if (args.length === 0) return { msg: message, fields: {} };
  // Placeholders take the arguments in order, as console.log does; objects are cleaned first.
  if (PLACEHOLDER.test(message))
    return { msg: format(message, ...args.map(redactDeep)), fields: {} };
  const fields: Record<string, unknown> = {};
  const rest: unknown[] = [];
  for (const arg of args) {
    if (arg instanceof Error && fields.err === undefined) fields.err = arg;
    else if (isPlainObject(arg)) Object.assign(fields, arg);
    else rest.push(redactDeep(arg));
  }
  return { msg: rest.length === 0 ? message : format(message, ...rest), fields };
}

/** The active span's ids (set by the tracing of invocations), if there is a valid one. */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const ctx = span.spanContext();
  return isSpanContextValid(ctx) ? { traceId: ctx.traceId, spanId: ctx.spanId } : {};
}

let stdoutDestination: LogDestination | undefined;

/** Standard output, synchronous: a line written before `process.exit` or a kill is not lost. */
function stdout(): LogDestination {
  return (stdoutDestination ??= pino.destination({ dest: 1, sync: true }));
}

type Prettify = (line: string) => string;

/**
 * pino-pretty's formatter in this thread, not a worker-thread transport: lines stay in order
 * with the rest of the output and none is lost when the process exits. Loaded only when used.
 */
function prettyStream(out: LogDestination): LogDestination {
  const require = createRequire(import.meta.url);
  const { prettyFactory } = require('pino-pretty') as {
    prettyFactory: (options: Record<string, unknown>) => Prettify;
  };
  const prettify = prettyFactory({
    // pino-pretty's default: colours on a terminal, none under NO_COLOR.
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,target,service,handler',
    singleLine: true,
    messageFormat: '{if target}{target} {end}{msg}',
  });
  return { write: (line: string) => out.write(prettify(line)) };
}
