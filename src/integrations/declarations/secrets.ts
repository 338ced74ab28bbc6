/**
 * Secrets by reference. A declaration never holds a credential, only the name of the
 * environment variable that does (`env('GITHUB_TOKEN')`, or `env(GITHUB_TOKEN)` in a file);
 * the value is read from the environment each time a request is signed, so rotating a
 * credential needs no reload and a process that never calls an integration needs none of its
 * secrets.
 */
import { IntegrationConfigError, MissingSecretError } from '../errors.js';

/** A reference to an environment variable. Plain JSON, so declarations stay serializable. */
export interface EnvRef {
  readonly env: string;
}

/** A credential: a reference to an environment variable, or (TypeScript only) a literal. */
export type Secret = EnvRef | string;

/**
 * A non-secret setting that may also come from the environment (a base URL, a region).
 */
export type Configurable = EnvRef | string;

/** The environment secrets are read from; `process.env` unless a test passes its own. */
export type Env = Readonly<Record<string, string | undefined>>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A reference to the environment variable `name`, read when a request is signed.
 *
 * @example
 * ```ts
 * const github = integration({
 *   name: 'GitHubAPI',
 *   baseUrl: 'https://api.github.com',
 *   auth: bearer(env('GITHUB_TOKEN')),
 * });
 * ```
 */
export function env(name: string): EnvRef {
  if (!ENV_NAME.test(name)) {
    throw new RangeError(
      `env(${JSON.stringify(name)}): an environment variable name is letters, digits and _ and does not start with a digit`,
    );
  }
  return { env: name };
}

/** True for an {@link EnvRef} (`{ env: 'NAME' }`). */
export function isEnvRef(value: unknown): value is EnvRef {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as { env?: unknown }).env === 'string'
  );
}

/** Checks a declared secret or configurable value; used by `integration()`. */
export function checkConfigurable(
  value: unknown,
  integration: string,
  path: string,
  what: string,
): void {
  if (typeof value === 'string') {
    if (value.length === 0)
      throw new IntegrationConfigError(integration, path, `is empty; ${what}`);
    return;
  }
  if (isEnvRef(value)) {
    if (!ENV_NAME.test(value.env)) {
      throw new IntegrationConfigError(
        integration,
        path,
        `names the environment variable ${JSON.stringify(value.env)}, which is not a valid name (letters, digits and _)`,
      );
    }
    return;
  }
  throw new IntegrationConfigError(integration, path, `must be a string or env('NAME'); ${what}`);
}

/**
 * Reads a secret or configurable value at use time. A missing or empty variable raises a
 * {@link MissingSecretError} naming the variable, the integration and the field.
 *
 * @example
 * ```ts
 * const token = resolveSecret(env('GITHUB_TOKEN'), { integration: 'GitHubAPI', field: 'auth.token' });
 * ```
 */
export function resolveSecret(
  value: Secret | Configurable,
  where: { integration: string; field: string },
  source: Env = process.env,
): string {
  if (typeof value === 'string') return value;
  const v = source[value.env];
  if (v === undefined || v === '') {
    throw new MissingSecretError(where.integration, where.field, value.env, v === '');
  }
  return v;
}
