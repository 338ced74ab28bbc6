/**
 * The declarations of `integrations.cai`, read once when this module loads, and the
 * `Integration`s the handlers call: each declaration as written, plus its in-process mock.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseIntegrations } from '../../src/integrations/dsl.js';
import {
  integration,
  type Integration,
  type IntegrationConfig,
} from '../../src/integrations/index.js';
import type { MockHandler } from '../../src/integrations/mocks.js';
import { patternMocks } from './mocks.js';

/** The path of the declarations file (give it to `startApp({ integrationsFile })`). */
export const INTEGRATIONS_FILE = ((): string => {
  const beside = fileURLToPath(new URL('./integrations.cai', import.meta.url));
  // Compiled (`npm start` runs dist/examples/...), the file is still in the source tree.
  return existsSync(beside)
    ? beside
    : fileURLToPath(
        new URL('../../../examples/integration-patterns/integrations.cai', import.meta.url),
      );
})();

/** The seven declarations of the file, parsed (plain data, no mocks). */
export const declarations: readonly IntegrationConfig[] = Object.freeze(
  parseIntegrations(readFileSync(INTEGRATIONS_FILE, 'utf8'), { file: INTEGRATIONS_FILE }),
);

/** The names the file declares, the handlers' way of picking an integration. */
export type PatternName =
  | 'GitHubAPI'
  | 'WeatherAPI'
  | 'StripeAPI'
  | 'GitHubGraphQL'
  | 'WebhookDeliveryService'
  | 'NotificationService'
  | 'StorageService';

/** The file's integrations by name, with the operations the file declares for each. */
export interface PatternIntegrations {
  readonly GitHubAPI: Integration<'get_user' | 'list_repos' | 'create_issue' | 'get_rate_limit'>;
  readonly WeatherAPI: Integration<'get_current'>;
  readonly StripeAPI: Integration<'create_charge'>;
  readonly GitHubGraphQL: Integration<'get_user_repos'>;
  readonly WebhookDeliveryService: Integration<never>;
  readonly NotificationService: Integration<'send'>;
  readonly StorageService: Integration<'put_object' | 'get_object'>;
}

/**
 * The file's declarations as integrations, each with its mock (see mocks.ts). `change` may
 * adjust a declaration first; tests point base URLs at local fake servers with it.
 *
 * @example
 * ```ts
 * const local = patternIntegrations({
 *   change: (c) => ({ ...c, baseUrl: api.url }),
 *   mocks: {}, // no mocks: every call goes to api.url
 * });
 * ```
 */
export function patternIntegrations(
  options: {
    change?: (config: IntegrationConfig) => IntegrationConfig;
    mocks?: Readonly<Record<string, MockHandler>>;
  } = {},
): PatternIntegrations {
  const mocks = options.mocks ?? patternMocks();
  const out: Record<string, Integration> = {};
  for (const config of declarations) {
    const changed = options.change ? options.change(config) : config;
    const mock = mocks[config.name];
    out[config.name] = integration(mock === undefined ? changed : { ...changed, mock });
  }
  for (const name of NAMES) {
    if (out[name] === undefined) throw new Error(`integrations.cai no longer declares ${name}`);
  }
  // The file is checked against these names and operations by the tests.
  return out as unknown as PatternIntegrations;
}

const NAMES: readonly PatternName[] = [
  'GitHubAPI',
  'WeatherAPI',
  'StripeAPI',
  'GitHubGraphQL',
  'WebhookDeliveryService',
  'NotificationService',
  'StorageService',
];
