/**
 * GitHub: the REST API (users, repositories, issues, deployments and their statuses, the rate
 * limit) and, in `github-graphql.ts`, the GraphQL API. A token as a bearer token; 5000 requests
 * an hour, adjusted by GitHub's `X-RateLimit-*` headers; reads cached.
 */
import { bearer } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env, type Secret } from '../declarations/secrets.js';
import {
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { githubMock } from './github.mock.js';
import type {
  GitHubCreateDeploymentParams,
  GitHubCreateDeploymentStatusParams,
  GitHubCreateIssueParams,
  GitHubDeployment,
  GitHubDeploymentParams,
  GitHubDeploymentStatus,
  GitHubGetIssueParams,
  GitHubGetUserParams,
  GitHubIssue,
  GitHubListReposParams,
  GitHubRateLimit,
  GitHubRepo,
  GitHubRepoParams,
  GitHubUpdateIssueParams,
  GitHubUser,
} from './github.types.js';

export type * from './github.types.js';

/** The operations of {@link github}, with their parameter and result types. */
export interface GitHubOperations {
  get_user: OperationTypes<GitHubGetUserParams, GitHubUser>;
  get_authenticated_user: OperationTypes<Record<string, never>, GitHubUser>;
  list_repos: OperationTypes<GitHubListReposParams, GitHubRepo[]>;
  get_repo: OperationTypes<GitHubRepoParams, GitHubRepo>;
  create_issue: OperationTypes<GitHubCreateIssueParams, GitHubIssue>;
  get_issue: OperationTypes<GitHubGetIssueParams, GitHubIssue>;
  update_issue: OperationTypes<GitHubUpdateIssueParams, GitHubIssue>;
  create_deployment: OperationTypes<GitHubCreateDeploymentParams, GitHubDeployment>;
  get_deployment: OperationTypes<GitHubDeploymentParams, GitHubDeployment>;
  create_deployment_status: OperationTypes<
    GitHubCreateDeploymentStatusParams,
    GitHubDeploymentStatus
  >;
  list_deployment_statuses: OperationTypes<GitHubDeploymentParams, GitHubDeploymentStatus[]>;
  get_rate_limit: OperationTypes<Record<string, never>, GitHubRateLimit>;
}

/** Options of {@link github} and {@link githubGraphQL}. */
export interface GitHubOptions extends ConnectorOptions {
  /** A personal access token or an app installation token. Default `env('GITHUB_TOKEN')`. */
  token?: Secret;
}

/** Headers GitHub wants on every request (it refuses requests without a User-Agent). */
export const GITHUB_HEADERS = {
  Accept: 'application/vnd.github+json',
  'X-GitHub-Api-Version': '2022-11-28',
  'User-Agent': 'keel',
} as const;

/** GitHub's primary limit for a token, and where it reports what is left. */
export const GITHUB_RATE_LIMIT = {
  requests: 5000,
  per: '1h',
  remainingHeader: 'X-RateLimit-Remaining',
  resetHeader: 'X-RateLimit-Reset',
} as const;

/** Auth and policies both GitHub APIs (REST and GraphQL) share. */
export function githubDefaults(options: Pick<GitHubOptions, 'token'>) {
  return {
    auth: bearer(options.token ?? env('GITHUB_TOKEN')),
    headers: GITHUB_HEADERS,
    timeout: '30s',
    retry: { maxAttempts: 4 },
    circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
    rateLimit: GITHUB_RATE_LIMIT,
    cache: { defaultTtl: '1m' },
  } as const;
}

/**
 * GitHub's REST API, ready to call.
 *
 * Defaults: base URL `https://api.github.com` (a GitHub Enterprise Server is
 * `https://HOST/api/v3`); `Authorization: Bearer $GITHUB_TOKEN`; API version 2022-11-28; 30s
 * timeout; 3 retries; a breaker opening after 5 failures in a minute for 30s; 5000 requests an
 * hour across processes, lowered to what `X-RateLimit-Remaining` says until `X-RateLimit-Reset`
 * (GitHub's 403 "rate limit exceeded" waits rather than fails). Reads are cached for a minute
 * (`get_user`, `get_authenticated_user`, `get_repo` five), except those a workflow polls
 * (`get_issue`, `list_deployment_statuses`), `list_repos` and `get_rate_limit`.
 *
 * Mock: GitHub-shaped users, repos, issues and deployments derived from their names; names
 * starting with `missing` are 404; a deployment `ref` starting with `conflict` is 409, `missing…`
 * 422; a deployment's statuses advance `queued` → `in_progress` → `success` one step per listing
 * (`failure` for a ref starting with `fail`).
 *
 * @example
 * ```ts
 * export const gh = github();
 *
 * const deployment = await use(ctx, gh).create_deployment({
 *   owner: 'acme', repo: 'shop', ref: 'v1.4.2', environment: 'production', required_contexts: [],
 * });
 * const statuses = await use(ctx, gh).list_deployment_statuses({
 *   owner: 'acme', repo: 'shop', deployment_id: deployment.id,
 * });
 * ```
 */
export function github(options: GitHubOptions = {}): Connector<GitHubOperations> {
  const repo = '/repos/{owner}/{repo}';
  const deployment = `${repo}/deployments/{deployment_id}`;
  return integration(
    withOverrides(
      {
        name: 'GitHub',
        baseUrl: 'https://api.github.com',
        ...githubDefaults(options),
        mock: githubMock(),
        operations: {
          get_user: { method: 'GET', path: '/users/{username}', cache: '5m' },
          get_authenticated_user: { method: 'GET', path: '/user', cache: '5m' },
          list_repos: { method: 'GET', path: '/user/repos', cache: false },
          get_repo: { method: 'GET', path: repo, cache: '5m' },
          create_issue: { method: 'POST', path: `${repo}/issues` },
          get_issue: { method: 'GET', path: `${repo}/issues/{issue_number}`, cache: false },
          update_issue: { method: 'PATCH', path: `${repo}/issues/{issue_number}` },
          create_deployment: { method: 'POST', path: `${repo}/deployments` },
          get_deployment: { method: 'GET', path: deployment },
          create_deployment_status: { method: 'POST', path: `${deployment}/statuses` },
          list_deployment_statuses: { method: 'GET', path: `${deployment}/statuses`, cache: false },
          get_rate_limit: { method: 'GET', path: '/rate_limit', cache: false },
        },
      },
      options,
    ),
  );
}
