import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GET_USER_REPOS } from '../../../src/integrations/connectors/github-graphql.js';
import { GITHUB_MOCK_LOGIN, githubMock } from '../../../src/integrations/mocks.js';
import { github, githubGraphQL } from '../../../src/integrations/index.js';
import { fakeGitHub, fakeGitHubGraphQL, type Fake } from '../../fakes/providers/index.js';
import { callError, clientOf, FAST_RETRY, mockReq, runtime } from './helpers.js';

const TOKEN = 'ghp_keeltesttoken';
const ENV = { GITHUB_TOKEN: TOKEN };

let rest: Fake;
let gql: Fake;
beforeAll(async () => {
  rest = await fakeGitHub(TOKEN);
  gql = await fakeGitHubGraphQL(TOKEN);
});
afterAll(async () => {
  await rest.api.close();
  await gql.api.close();
});

function client(name: string) {
  // The runtime's limiter paces calls (one per 720 ms at 5000 an hour); it is tested elsewhere.
  return clientOf(
    runtime({ env: ENV }),
    github({ name, baseUrl: rest.api.url, retry: FAST_RETRY, rateLimit: false }),
  );
}

describe('github REST connector on the wire', () => {
  it('GETs a user with the token, API version, media type and User-Agent; caches it', async () => {
    const gh = client('GitHubWire1');
    const before = rest.api.requests.length;
    const user = await gh.get_user.withResponse({ username: 'octocat' });
    const r = rest.api.last();
    expect(r.method).toBe('GET');
    expect(r.target).toBe('/users/octocat');
    expect(r.headers).toMatchObject({
      authorization: `Bearer ${TOKEN}`,
      accept: 'application/vnd.github+json',
      'x-github-api-version': '2022-11-28',
      'user-agent': 'keel',
    });
    expect(user.data).toMatchObject({
      login: 'octocat',
      type: 'User',
      html_url: 'https://github.com/octocat',
    });
    expect(user.headers['x-ratelimit-limit']).toBe('5000');
    const again = await gh.get_user.withResponse({ username: 'octocat' });
    expect(again.fromCache).toBe(true);
    expect(rest.api.requests.length - before).toBe(1);
  });

  it('POSTs an issue as JSON with only the body fields, and closes it with PATCH', async () => {
    const gh = client('GitHubWire2');
    const issue = await gh.create_issue({
      owner: 'acme',
      repo: 'shop',
      title: 'Broken checkout',
      labels: ['bug'],
    });
    let r = rest.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe('/repos/acme/shop/issues');
    expect(JSON.parse(r.text)).toEqual({ title: 'Broken checkout', labels: ['bug'] });
    expect(issue).toMatchObject({
      title: 'Broken checkout',
      state: 'open',
      labels: [{ name: 'bug' }],
    });

    const closed = await gh.update_issue({
      owner: 'acme',
      repo: 'shop',
      issue_number: issue.number,
      state: 'closed',
    });
    r = rest.api.last();
    expect(r.method).toBe('PATCH');
    expect(r.target).toBe(`/repos/acme/shop/issues/${issue.number}`);
    expect(JSON.parse(r.text)).toEqual({ state: 'closed' });
    expect(closed).toMatchObject({
      state: 'closed',
      state_reason: 'completed',
      number: issue.number,
    });
  });

  it('sends list parameters as the query string', async () => {
    const repos = await client('GitHubWire3').list_repos({ per_page: 2, page: 1, sort: 'updated' });
    expect(rest.api.last().query).toEqual({ per_page: '2', page: '1', sort: 'updated' });
    expect(repos).toHaveLength(2);
    expect(repos[0]!.owner.login).toBe(GITHUB_MOCK_LOGIN);
  });

  it('creates a deployment and sees its statuses advance, uncached, to success', async () => {
    const gh = client('GitHubWire4');
    const d = await gh.create_deployment({
      owner: 'acme',
      repo: 'shop',
      ref: 'v1.4.2',
      environment: 'production',
      required_contexts: [],
    });
    expect(rest.api.last().target).toBe('/repos/acme/shop/deployments');
    expect(d).toMatchObject({ ref: 'v1.4.2', environment: 'production', task: 'deploy' });
    const states: string[] = [];
    for (let i = 0; i < 3; i++) {
      const list = await gh.list_deployment_statuses({
        owner: 'acme',
        repo: 'shop',
        deployment_id: d.id,
      });
      states.push(list[0]!.state);
    }
    expect(rest.api.last().target).toBe(`/repos/acme/shop/deployments/${d.id}/statuses`);
    expect(states).toEqual(['queued', 'in_progress', 'success']);
  });

  it('waits out a rate-limit 403 instead of failing; a 404 fails at once', async () => {
    const before = rest.api.requests.length;
    rest.mock.failNext(1, 403);
    const limit = await client('GitHubWire5').get_rate_limit({});
    expect(rest.api.requests.length - before).toBe(2);
    expect(limit.resources.core.limit).toBe(5000);

    const err = await callError(client('GitHubWire6').get_user({ username: 'missing-user' }));
    expect(err.failure).toMatchObject({ status: 404, attempts: 1, body: { message: 'Not Found' } });
  });

  it('declares 5000 requests an hour, adjusted by the X-RateLimit headers', () => {
    expect(github().rateLimit).toMatchObject({
      requests: 5000,
      windowMs: 3_600_000,
      remainingHeader: 'X-RateLimit-Remaining',
      resetHeader: 'X-RateLimit-Reset',
    });
  });
});

describe('github GraphQL connector on the wire', () => {
  const client = (name: string) =>
    clientOf(
      runtime({ env: ENV }),
      githubGraphQL({
        name,
        baseUrl: `${gql.api.url}/graphql`,
        retry: FAST_RETRY,
        rateLimit: false,
        operations: {
          get_issue_count: {
            query: 'query { repository(owner: "a", name: "b") { issues { totalCount } } }',
          },
        },
      }),
    );

  it('POSTs the document and variables (with the default) to /graphql and returns data', async () => {
    const data = await client('GitHubGQL1').get_user_repos({ login: 'octocat' });
    const r = gql.api.last();
    expect(r.method).toBe('POST');
    expect(r.target).toBe('/graphql');
    expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(r.text)).toEqual({
      query: GET_USER_REPOS,
      variables: { login: 'octocat', first: 10 },
    });
    expect(data.user?.repositories.nodes.length).toBeGreaterThan(0);
    expect(data.user?.repositories.nodes[0]).toEqual({
      name: expect.any(String),
      stargazerCount: expect.any(Number),
    });
  });

  it('an unknown login is user: null; a document the mock does not know fails the call', async () => {
    expect(await client('GitHubGQL2').get_user_repos({ login: 'missing-ghost' })).toEqual({
      user: null,
    });
    const gh = client('GitHubGQL3') as unknown as Record<string, (p: object) => Promise<unknown>>;
    const err = await callError(gh.get_issue_count!({}));
    expect(err.code).toBe('integration_graphql_errors');
  });
});

describe('github mock', () => {
  it('users and repos are derived from their names, the same every time', () => {
    const a = githubMock()(mockReq('GET', '/users/ada'));
    expect(a.body).toEqual(githubMock()(mockReq('GET', '/users/ada')).body);
    expect(a.body).toMatchObject({
      login: 'ada',
      id: expect.any(Number),
      created_at: expect.stringMatching(/Z$/),
    });
    expect(githubMock()(mockReq('GET', '/repos/missing-org/x')).status).toBe(404);
  });

  it('deployments: 409 for a conflicting ref, 422 for a missing one, failure for fail…', () => {
    const mock = githubMock();
    const create = (ref: string) =>
      mock(mockReq('POST', '/repos/a/b/deployments', { body: { ref } }));
    expect(create('conflict-branch').status).toBe(409);
    expect(create('missing-tag').status).toBe(422);
    expect(mock(mockReq('POST', '/repos/a/b/deployments', { body: {} })).status).toBe(422);
    const d = create('fail-fast').body as { id: number };
    const list = () =>
      mock(mockReq('GET', `/repos/a/b/deployments/${d.id}/statuses`)).body as { state: string }[];
    list();
    list();
    expect(list()[0]!.state).toBe('failure');
  });

  it('statuses created through the API are listed newest first with the automatic ones', () => {
    const mock = githubMock();
    const d = mock(mockReq('POST', '/repos/a/b/deployments', { body: { ref: 'main' } })).body as {
      id: number;
    };
    const path = `/repos/a/b/deployments/${d.id}/statuses`;
    expect(mock(mockReq('POST', path, { body: { state: 'bogus' } })).status).toBe(422);
    expect(mock(mockReq('POST', path, { body: { state: 'inactive' } })).status).toBe(201);
    const states = (mock(mockReq('GET', path)).body as { state: string }[]).map((s) => s.state);
    expect(states).toEqual(['inactive', 'queued']);
  });

  it('counts requests in the rate-limit headers, not /rate_limit itself', () => {
    const mock = githubMock();
    mock(mockReq('GET', '/user'));
    const res = mock(mockReq('GET', '/rate_limit'));
    expect(res.headers?.['x-ratelimit-remaining']).toBe('4999');
    expect(res.body).toMatchObject({ resources: { core: { used: 1, remaining: 4999 } } });
  });
});
