/**
 * Integrations declared in a file: the `integration Name { ... }` syntax of the seed documents,
 * or the same data as JSON. Both produce `IntegrationConfig`s, validated by `integration()`, with
 * every error pointing at a line and column. See docs/integrations.md for the format.
 *
 * Secrets are `env(NAME)` references, kept as references and read when a request is signed; a
 * literal credential in a file is refused.
 */
import { readFile } from 'node:fs/promises';
import type { IntegrationConfig } from '../config.js';
import { interpretDocument } from './interpret.js';

/**
 * Parses integration declarations: the DSL, or JSON (a document starting with `{` or `[`).
 * Throws an `IntegrationDeclarationError` with the line and column of the first problem.
 *
 * @example
 * ```ts
 * const [github] = parseIntegrations(`
 *   integration GitHubAPI {
 *     type: rest
 *     base_url: "https://api.github.com"
 *     auth: bearer(env(GITHUB_TOKEN))
 *     retry: 3 times with exponential_backoff
 *     circuit_breaker: 5 failures in 1m, reset after 30s
 *     rate_limit: 5000 per hour
 *     operation get_user {
 *       method: GET
 *       path: "/users/{username}"
 *       cache: 5m
 *     }
 *   }
 * `);
 * const api = integration(github!);
 * ```
 */
export function parseIntegrations(
  source: string,
  options: { file?: string } = {},
): IntegrationConfig[] {
  return interpretDocument(source, options.file);
}

/**
 * Reads and parses an integrations file; errors name the file.
 *
 * @example
 * ```ts
 * const configs = await readIntegrationsFile('integrations.keel');
 * const integrations = configs.map((c) => integration(c));
 * ```
 */
export async function readIntegrationsFile(path: string): Promise<IntegrationConfig[]> {
  return parseIntegrations(await readFile(path, 'utf8'), { file: path });
}
