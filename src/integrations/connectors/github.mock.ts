/**
 * GitHub's REST API in-process: users, repositories, issues, deployments and their statuses,
 * and the rate limit, answering with GitHub's shapes and `X-RateLimit-*` headers (so the rate
 * limiter's header adjustment runs in mock mode too).
 *
 * Failures on demand: a user, owner or repository named `missing…` → 404; a deployment `ref`
 * starting with `conflict` → 409 (merge conflict), one starting with `missing` → 422 (no such
 * ref); `failNext(1, 403)` → GitHub's "API rate limit exceeded" with `X-RateLimit-Remaining: 0`.
 *
 * Deployments progress by themselves, as if a deployer were working on them: listing a
 * deployment's statuses shows `queued`, then `in_progress`, then `success` (or `failure` for a
 * `ref` starting with `fail`), one step per listing, on top of any status created through the API.
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  GITHUB_MOCK_LOGIN,
  iso,
  labels,
  makeDeployment,
  makeIssue,
  makeStatus,
  mockGitHubRepo,
  mockGitHubUser,
  mockRepoNames,
  simple,
} from './github.mock-data.js';
import type {
  GitHubDeployment,
  GitHubDeploymentState,
  GitHubDeploymentStatus,
  GitHubIssue,
} from './github.types.js';
import {
  bodyObject,
  connectorMock,
  isMissing,
  json,
  MOCK_EPOCH_S,
  mockTimestamp,
  numberFrom,
  routes,
  type ConnectorMock,
  type RouteHandler,
} from './mock-kit.js';

export { GITHUB_MOCK_LOGIN, mockGitHubRepo, mockGitHubUser } from './github.mock-data.js';

const DOCS = 'https://docs.github.com/rest';
const LIMIT = 5000;

/**
 * A GitHub REST mock with its own state (issues, deployments and statuses created so far).
 *
 * @example
 * ```ts
 * const mock = githubMock();
 * const gh = github({ mock, mockMode: true });
 * mock.failNext(1, 502); // one Bad Gateway, then normal answers
 * ```
 */
export function githubMock(): ConnectorMock {
  return connectorMock(makeGitHub, (status) => {
    if (status === 403 || status === 429) {
      return json(
        status,
        {
          message: 'API rate limit exceeded for user ID 1.',
          documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api`,
        },
        rateHeaders(LIMIT, 0),
      );
    }
    return json(status, { message: status >= 500 ? 'Server Error' : 'Mock failure' });
  });
}

function makeGitHub(): (req: MockRequest) => MockResponse {
  let used = 0;
  const issues = new Map<string, GitHubIssue>();
  const nextIssue = new Map<string, number>();
  const deployments = new Map<number, GitHubDeployment>();
  const statuses = new Map<number, GitHubDeploymentStatus[]>();
  const listings = new Map<number, number>();

  const notFound = (doc: string): MockResponse =>
    json(404, { message: 'Not Found', documentation_url: `${DOCS}/${doc}`, status: '404' });

  const repoGuard =
    (handle: RouteHandler): RouteHandler =>
    (req, p) =>
      isMissing(p.owner) || isMissing(p.repo)
        ? notFound('repos/repos#get-a-repository')
        : handle(req, p);

  const issueKey = (p: Record<string, string>): string => `${p.owner}/${p.repo}#${p.issue_number}`;

  const findIssue = (p: Record<string, string>): GitHubIssue | undefined => {
    const n = Number(p.issue_number);
    if (!Number.isSafeInteger(n) || n < 1) return undefined;
    const known = issues.get(issueKey(p));
    if (known !== undefined) return known;
    // An issue from before a restart, or from outside the mock: it exists, with a stand-in title.
    const issue = makeIssue(p.owner!, p.repo!, n, { title: `Issue #${n}` });
    issues.set(issueKey(p), issue);
    return issue;
  };

  const findDeployment = (p: Record<string, string>): GitHubDeployment | undefined => {
    const id = Number(p.deployment_id);
    if (!Number.isSafeInteger(id) || id < 1) return undefined;
    const known = deployments.get(id);
    if (known !== undefined) return known;
    const d = makeDeployment(p.owner!, p.repo!, id, { ref: 'main' });
    deployments.set(id, d);
    return d;
  };

  const answer = routes(
    [
      {
        method: 'GET',
        path: '/users/{username}',
        handle: (_, p) =>
          isMissing(p.username)
            ? notFound('users/users#get-a-user')
            : json(200, mockGitHubUser(p.username!)),
      },
      { method: 'GET', path: '/user', handle: () => json(200, mockGitHubUser(GITHUB_MOCK_LOGIN)) },
      {
        method: 'GET',
        path: '/user/repos',
        handle: (req) => {
          const perPage = clamp(Number(req.query.per_page ?? 30), 1, 100);
          const page = Math.max(1, Number(req.query.page ?? 1) || 1);
          const names = mockRepoNames(GITHUB_MOCK_LOGIN, 12);
          const slice = names.slice((page - 1) * perPage, page * perPage);
          return json(
            200,
            slice.map((n) => mockGitHubRepo(GITHUB_MOCK_LOGIN, n)),
          );
        },
      },
      {
        method: 'GET',
        path: '/repos/{owner}/{repo}',
        handle: repoGuard((_, p) => json(200, mockGitHubRepo(p.owner!, p.repo!))),
      },
      {
        method: 'POST',
        path: '/repos/{owner}/{repo}/issues',
        handle: repoGuard((req, p) => {
          const b = bodyObject(req.body);
          if (typeof b.title !== 'string' || b.title === '') {
            return validationFailed(
              'Issue',
              'title',
              'missing_field',
              'issues/issues#create-an-issue',
            );
          }
          const key = `${p.owner}/${p.repo}`;
          const n = nextIssue.get(key) ?? 1 + numberFrom(200, 'issues', key);
          nextIssue.set(key, n + 1);
          const issue = makeIssue(p.owner!, p.repo!, n, b);
          issues.set(`${key}#${n}`, issue);
          return json(201, issue, { location: issue.url });
        }),
      },
      {
        method: 'GET',
        path: '/repos/{owner}/{repo}/issues/{issue_number}',
        handle: repoGuard((_, p) => {
          const issue = findIssue(p);
          return issue === undefined ? notFound('issues/issues#get-an-issue') : json(200, issue);
        }),
      },
      {
        method: 'PATCH',
        path: '/repos/{owner}/{repo}/issues/{issue_number}',
        handle: repoGuard((req, p) => {
          const issue = findIssue(p);
          if (issue === undefined) return notFound('issues/issues#update-an-issue');
          const b = bodyObject(req.body);
          if (b.state !== undefined && b.state !== 'open' && b.state !== 'closed') {
            return validationFailed('Issue', 'state', 'invalid', 'issues/issues#update-an-issue');
          }
          const updated: GitHubIssue = {
            ...issue,
            ...(typeof b.title === 'string' ? { title: b.title } : {}),
            ...(typeof b.body === 'string' ? { body: b.body } : {}),
            ...(Array.isArray(b.labels) ? { labels: labels(b.labels) } : {}),
            ...(Array.isArray(b.assignees)
              ? { assignees: (b.assignees as string[]).map(simple) }
              : {}),
            updated_at: iso(mockTimestamp('issue-updated', issueKey(p), b)),
          };
          if (b.state === 'closed' && issue.state === 'open') {
            updated.state = 'closed';
            updated.state_reason = b.state_reason === 'not_planned' ? 'not_planned' : 'completed';
            updated.closed_at = updated.updated_at;
          } else if (b.state === 'open' && issue.state === 'closed') {
            updated.state = 'open';
            updated.state_reason = 'reopened';
            updated.closed_at = null;
          }
          issues.set(issueKey(p), updated);
          return json(200, updated);
        }),
      },
      {
        method: 'POST',
        path: '/repos/{owner}/{repo}/deployments',
        handle: repoGuard((req, p) => {
          const b = bodyObject(req.body);
          const ref = typeof b.ref === 'string' ? b.ref : undefined;
          if (ref === undefined || ref === '') {
            return validationFailed(
              'Deployment',
              'ref',
              'missing_field',
              'deployments/deployments#create-a-deployment',
            );
          }
          if (ref.startsWith('conflict')) {
            return json(409, {
              message: `Conflict merging main into ${ref}.`,
              documentation_url: `${DOCS}/deployments/deployments#create-a-deployment`,
            });
          }
          if (isMissing(ref)) {
            return json(422, {
              message: `No ref found for: ${ref}`,
              documentation_url: `${DOCS}/deployments/deployments#create-a-deployment`,
            });
          }
          const id =
            100_000_000 +
            numberFrom(
              900_000_000,
              'deployment',
              p.owner,
              p.repo,
              req.headers['idempotency-key'] ?? b,
            );
          const d = makeDeployment(p.owner!, p.repo!, id, b);
          deployments.set(id, d);
          return json(201, d);
        }),
      },
      {
        method: 'GET',
        path: '/repos/{owner}/{repo}/deployments/{deployment_id}',
        handle: repoGuard((_, p) => {
          const d = findDeployment(p);
          return d === undefined
            ? notFound('deployments/deployments#get-a-deployment')
            : json(200, d);
        }),
      },
      {
        method: 'POST',
        path: '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses',
        handle: repoGuard((req, p) => {
          const d = findDeployment(p);
          if (d === undefined) return notFound('deployments/statuses#create-a-deployment-status');
          const b = bodyObject(req.body);
          if (!STATES.includes(b.state as GitHubDeploymentState)) {
            return validationFailed(
              'DeploymentStatus',
              'state',
              'invalid',
              'deployments/statuses#create-a-deployment-status',
            );
          }
          const list = statuses.get(d.id) ?? [];
          const s = makeStatus(d, b.state as GitHubDeploymentState, list.length, b);
          statuses.set(d.id, [...list, s]);
          return json(201, s);
        }),
      },
      {
        method: 'GET',
        path: '/repos/{owner}/{repo}/deployments/{deployment_id}/statuses',
        handle: repoGuard((_, p) => {
          const d = findDeployment(p);
          if (d === undefined) return notFound('deployments/statuses#list-deployment-statuses');
          const listing = (listings.get(d.id) ?? 0) + 1;
          listings.set(d.id, listing);
          const final: GitHubDeploymentState = d.ref.startsWith('fail') ? 'failure' : 'success';
          const progress = (['queued', 'in_progress', final] as const).slice(
            0,
            Math.min(listing, 3),
          );
          const automatic = progress.map((state, i) => makeStatus(d, state, -1 - i, {}));
          const all = [...automatic, ...(statuses.get(d.id) ?? [])];
          // Newest first, as GitHub lists them.
          all.sort((a, b) =>
            a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : b.id - a.id,
          );
          return json(200, all);
        }),
      },
      {
        method: 'GET',
        path: '/rate_limit',
        handle: () => {
          const bucket = (limit: number, n: number) => ({
            limit,
            used: n,
            remaining: limit - n,
            reset: MOCK_EPOCH_S + 3600,
          });
          return json(200, {
            resources: {
              core: bucket(LIMIT, used),
              search: bucket(30, 0),
              graphql: bucket(LIMIT, 0),
            },
            rate: bucket(LIMIT, used),
          });
        },
      },
    ],
    () => json(404, { message: 'Not Found', documentation_url: DOCS, status: '404' }),
  );

  return (req) => {
    // /rate_limit does not count against the limit, as on GitHub.
    if (req.path !== '/rate_limit') used = Math.min(LIMIT, used + 1);
    const res = answer(req);
    return { ...res, headers: { ...rateHeaders(LIMIT, LIMIT - used), ...res.headers } };
  };
}

const STATES: readonly GitHubDeploymentState[] = [
  'error',
  'failure',
  'inactive',
  'in_progress',
  'queued',
  'pending',
  'success',
];

function validationFailed(
  resource: string,
  field: string,
  code: string,
  doc: string,
): MockResponse {
  return json(422, {
    message: 'Validation Failed',
    errors: [{ resource, field, code }],
    documentation_url: `${DOCS}/${doc}`,
    status: '422',
  });
}

function rateHeaders(limit: number, remaining: number): Record<string, string> {
  return {
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(remaining),
    'x-ratelimit-used': String(limit - remaining),
    'x-ratelimit-reset': String(MOCK_EPOCH_S + 3600),
    'x-ratelimit-resource': 'core',
  };
}

function clamp(n: number, lo: number, hi: number): number {
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, Math.trunc(n))) : lo;
}
