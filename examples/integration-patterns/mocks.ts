/**
 * In-process stand-ins for the seven declared integrations, so `npm start` runs them without API
 * keys. Where a Keel connector already mocks the provider (GitHub REST and GraphQL, OpenWeather,
 * Stripe, S3), the declaration in `integrations.cai` uses the connector's paths and gets the
 * connector's mock; the notification service, which no connector covers, gets its own.
 */
import {
  githubGraphQLMock,
  githubMock,
  openWeatherMock,
  s3Mock,
  stripeMock,
  type MockHandler,
  type MockRequest,
  type MockResponse,
} from '../../src/integrations/mocks.js';

/**
 * The notification service's batch endpoint: one `{ id, status: 'sent' }` per notification of
 * the batch, in order (the runtime hands element i back to call i). A notification to an address
 * starting with `bounce` is answered `{ status: 'rejected' }`.
 *
 * @example
 * ```ts
 * notificationMock({ ...req, body: [{ to: 'ada@example.com', message: 'hi' }] }).body;
 * // [{ id: 'ntf_1', to: 'ada@example.com', status: 'sent' }]
 * ```
 */
export function notificationMock(): MockHandler & { batches: unknown[][] } {
  let next = 1;
  const batches: unknown[][] = [];
  const handler = (req: MockRequest): MockResponse => {
    const items = Array.isArray(req.body) ? (req.body as unknown[]) : [req.body];
    batches.push(items);
    return {
      body: items.map((item) => {
        const given = (item as { to?: unknown } | null)?.to;
        const to = typeof given === 'string' ? given : '';
        return { id: `ntf_${next++}`, to, status: to.startsWith('bounce') ? 'rejected' : 'sent' };
      }),
    };
  };
  return Object.assign(handler, { batches });
}

/** A fresh set of mocks, by integration name (each mock keeps its own state). */
export function patternMocks(): Record<string, MockHandler> {
  return {
    GitHubAPI: githubMock(),
    WeatherAPI: openWeatherMock(),
    StripeAPI: stripeMock(),
    GitHubGraphQL: githubGraphQLMock(),
    NotificationService: notificationMock(),
    StorageService: s3Mock(),
  };
}
