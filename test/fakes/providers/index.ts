/**
 * Fake provider servers, one per connector: the provider's credential check (answering 401/403
 * with the provider's own error shape) in front of the connector's mock logic.
 */
import {
  githubGraphQLMock,
  githubMock,
  openWeatherMock,
  s3Mock,
  sendgridMock,
  shippoMock,
  slackMock,
  stripeMock,
  twilioMock,
  type ConnectorMock,
} from '../../../src/integrations/mocks.js';
import { s3Error } from '../../../src/integrations/connectors/s3.mock.js';
import { FakeProvider, type FakeProviderOptions } from './server.js';
import { verifySigV4, type SigV4Verifier } from './sigv4-verify.js';

export { FakeProvider, type WireRecord } from './server.js';

/** A started fake and the mock behind it (for `failNext`). */
export interface Fake {
  api: FakeProvider;
  mock: ConnectorMock;
}

const json = (status: number, body: unknown) => ({
  status,
  headers: { 'content-type': 'application/json' },
  body,
});

async function start(
  mock: ConnectorMock,
  authenticate: FakeProviderOptions['authenticate'],
  basePath?: string,
): Promise<Fake> {
  const api = await FakeProvider.start({
    handler: mock,
    ...(authenticate === undefined ? {} : { authenticate }),
    ...(basePath === undefined ? {} : { basePath }),
  });
  return { api, mock };
}

/** Stripe: `Authorization: Bearer <secret key>`. */
export function fakeStripe(secretKey: string): Promise<Fake> {
  return start(stripeMock(), (r) =>
    r.headers.authorization === `Bearer ${secretKey}`
      ? undefined
      : json(401, {
          error: {
            type: 'invalid_request_error',
            message: 'Invalid API Key provided: sk_test_****',
          },
        }),
  );
}

/** Twilio: HTTP Basic `AccountSid:AuthToken`. */
export function fakeTwilio(accountSid: string, authToken: string): Promise<Fake> {
  const expected = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
  return start(twilioMock(), (r) =>
    r.headers.authorization === expected
      ? undefined
      : json(401, {
          code: 20003,
          message: 'Authenticate',
          more_info: 'https://www.twilio.com/docs/errors/20003',
          status: 401,
        }),
  );
}

/** Slack: the webhook's path is the credential. */
export function fakeSlack(webhookPath: string): Promise<Fake> {
  return start(slackMock(), (r) =>
    r.rawPath === webhookPath
      ? undefined
      : { status: 404, headers: { 'content-type': 'text/html' }, body: 'no_service' },
  );
}

/** SendGrid: `Authorization: Bearer <API key>`. */
export function fakeSendGrid(apiKey: string): Promise<Fake> {
  return start(sendgridMock(), (r) =>
    r.headers.authorization === `Bearer ${apiKey}`
      ? undefined
      : json(401, {
          errors: [
            {
              message: 'The provided authorization grant is invalid, expired, or revoked',
              field: null,
              help: null,
            },
          ],
        }),
  );
}

function githubAuth(token: string) {
  return (r: { headers: Record<string, string> }) => {
    // GitHub refuses requests without a User-Agent.
    if (r.headers['user-agent'] === undefined) {
      return json(403, {
        message:
          'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
      });
    }
    return r.headers.authorization === `Bearer ${token}`
      ? undefined
      : json(401, {
          message: 'Bad credentials',
          documentation_url: 'https://docs.github.com/rest',
        });
  };
}

/** GitHub REST: a bearer token and a User-Agent. */
export function fakeGitHub(token: string): Promise<Fake> {
  return start(githubMock(), githubAuth(token));
}

/** GitHub GraphQL at `/graphql`. */
export function fakeGitHubGraphQL(token: string): Promise<Fake> {
  return start(githubGraphQLMock(), githubAuth(token), '/graphql');
}

/** Shippo: `Authorization: ShippoToken <token>`. */
export function fakeShippo(token: string): Promise<Fake> {
  return start(shippoMock(), (r) =>
    r.headers.authorization === `ShippoToken ${token}`
      ? undefined
      : json(401, { detail: 'Invalid token.' }),
  );
}

/** OpenWeather: the key in the `appid` query parameter. */
export function fakeOpenWeather(apiKey: string): Promise<Fake> {
  return start(openWeatherMock(), (r) =>
    r.query.appid === apiKey
      ? undefined
      : json(401, {
          cod: 401,
          message:
            'Invalid API key. Please see https://openweathermap.org/faq#error401 for more info.',
        }),
  );
}

/** S3: SigV4, verified independently of the client's signer. */
export function fakeS3(verifier: SigV4Verifier): Promise<Fake> {
  return start(s3Mock(), (r) => {
    const problem = verifySigV4(r, verifier);
    return problem === undefined
      ? undefined
      : s3Error(
          403,
          problem,
          'The request signature we calculated does not match the signature you provided.',
          r.rawPath,
        );
  });
}
