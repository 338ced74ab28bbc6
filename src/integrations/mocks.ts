/**
 * Mock mode (`keel/integrations/mocks`): the contract an integration's `mock` follows, the
 * connectors' in-process mocks with their controls (`failNext`, `requests`, `reset`), the kit they
 * are built from, and the providers' magic test values the mocks answer to (Stripe's decline
 * tokens, Twilio's magic numbers, Shippo's test tracking numbers, ...).
 *
 * @example
 * ```ts
 * import { stripe } from 'keel/integrations';
 * import { stripeMock } from 'keel/integrations/mocks';
 *
 * const mock = stripeMock();
 * const payments = stripe({ mock, mockMode: true });
 * mock.failNext(2, 503); // the next two requests get Stripe's api_error
 * ```
 */

// The contract
export { mockModeOn, mockDecision } from './declarations/mock.js';
export type { MockHandler, MockRequest, MockResponse, MockDecision } from './declarations/mock.js';

// Building a mock
export { connectorMock, routes, json } from './connectors/mock-kit.js';
export type { ConnectorMock, MockRoute, RouteHandler } from './connectors/mock-kit.js';

// The connectors' mocks and the test values they answer to
export { stripeMock, STRIPE_DECLINES } from './connectors/stripe.mock.js';
export { twilioMock, TWILIO_MAGIC_TO, TWILIO_MAGIC_FROM } from './connectors/twilio.mock.js';
export { slackMock } from './connectors/slack.mock.js';
export { sendgridMock, SENDGRID_UNVERIFIED_DOMAIN } from './connectors/sendgrid.mock.js';
export { githubMock } from './connectors/github.mock.js';
export {
  GITHUB_MOCK_LOGIN,
  mockGitHubUser,
  mockGitHubRepo,
} from './connectors/github.mock-data.js';
export { githubGraphQLMock } from './connectors/github-graphql.mock.js';
export { shippoMock, SHIPPO_TEST_TRACKING } from './connectors/shippo.mock.js';
export { openWeatherMock } from './connectors/openweather.mock.js';
export { s3Mock } from './connectors/s3.mock.js';
