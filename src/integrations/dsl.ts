/**
 * Integrations declared in a file (`keel/integrations/dsl`): the `integration Name { ... }`
 * syntax of the seed documents, or the same data as JSON, parsed into `IntegrationConfig`s for
 * `integration()`. Errors point at a line and column. An app can also load such a file at start
 * with `startApp({ integrationsFile })`; see docs/integrations.md for the format.
 *
 * @example
 * ```ts
 * import { integration } from 'keel/integrations';
 * import { readIntegrationsFile } from 'keel/integrations/dsl';
 *
 * const integrations = (await readIntegrationsFile('integrations.keel')).map((c) => integration(c));
 * ```
 */
export { parseIntegrations, readIntegrationsFile } from './declarations/dsl/parse.js';
export { IntegrationDeclarationError } from './errors.js';
export type { SourcePosition } from './errors.js';
