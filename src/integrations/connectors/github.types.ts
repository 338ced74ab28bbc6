/**
 * GitHub's REST API (api.github.com, version 2022-11-28) and GraphQL API, the parts the
 * connector's operations use, typed as GitHub documents them.
 */

/** A user as `GET /users/{username}` returns it. */
export interface GitHubUser {
  login: string;
  id: number;
  node_id: string;
  avatar_url: string;
  gravatar_id: string;
  url: string;
  html_url: string;
  repos_url: string;
  type: 'User' | 'Organization' | 'Bot';
  site_admin: boolean;
  name: string | null;
  company: string | null;
  blog: string | null;
  location: string | null;
  email: string | null;
  bio: string | null;
  public_repos: number;
  public_gists: number;
  followers: number;
  following: number;
  created_at: string;
  updated_at: string;
}

/** The short form of a user, inside other objects. */
export type GitHubSimpleUser = Pick<
  GitHubUser,
  'login' | 'id' | 'node_id' | 'avatar_url' | 'url' | 'html_url' | 'type' | 'site_admin'
>;

/** A repository. */
export interface GitHubRepo {
  id: number;
  node_id: string;
  name: string;
  full_name: string;
  owner: GitHubSimpleUser;
  private: boolean;
  html_url: string;
  description: string | null;
  fork: boolean;
  url: string;
  default_branch: string;
  language: string | null;
  stargazers_count: number;
  watchers_count: number;
  forks_count: number;
  open_issues_count: number;
  visibility: 'public' | 'private' | 'internal';
  created_at: string;
  updated_at: string;
  pushed_at: string;
}

/** A label on an issue. */
export interface GitHubLabel {
  id: number;
  node_id: string;
  name: string;
  color: string;
  default: boolean;
}

/** An issue. */
export interface GitHubIssue {
  id: number;
  node_id: string;
  url: string;
  html_url: string;
  number: number;
  state: 'open' | 'closed';
  state_reason: 'completed' | 'not_planned' | 'reopened' | null;
  title: string;
  body: string | null;
  user: GitHubSimpleUser;
  labels: GitHubLabel[];
  assignees: GitHubSimpleUser[];
  comments: number;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
}

/** A deployment. */
export interface GitHubDeployment {
  url: string;
  id: number;
  node_id: string;
  sha: string;
  ref: string;
  task: string;
  payload: Record<string, unknown> | string;
  original_environment: string;
  environment: string;
  description: string | null;
  creator: GitHubSimpleUser;
  created_at: string;
  updated_at: string;
  statuses_url: string;
  repository_url: string;
  transient_environment: boolean;
  production_environment: boolean;
}

/** The states a deployment status can have. */
export type GitHubDeploymentState =
  'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success';

/** A deployment status. */
export interface GitHubDeploymentStatus {
  url: string;
  id: number;
  node_id: string;
  state: GitHubDeploymentState;
  creator: GitHubSimpleUser;
  description: string;
  environment: string;
  target_url: string;
  log_url: string;
  environment_url: string;
  created_at: string;
  updated_at: string;
  deployment_url: string;
  repository_url: string;
}

/** One rate-limit bucket. `reset` is epoch seconds. */
export interface GitHubRateLimitBucket {
  limit: number;
  used: number;
  remaining: number;
  reset: number;
}

/** `GET /rate_limit`. */
export interface GitHubRateLimit {
  resources: {
    core: GitHubRateLimitBucket;
    search: GitHubRateLimitBucket;
    graphql: GitHubRateLimitBucket;
    [resource: string]: GitHubRateLimitBucket;
  };
  rate: GitHubRateLimitBucket;
}

/** The body of a GitHub error response. */
export interface GitHubErrorBody {
  message: string;
  documentation_url?: string;
  status?: string;
  errors?: { resource: string; field: string; code: string; message?: string }[];
}

// Parameters, named as in GitHub's documentation.

/** `GET /users/{username}`. */
export interface GitHubGetUserParams {
  username: string;
}

/** `GET /user/repos`. */
export interface GitHubListReposParams {
  visibility?: 'all' | 'public' | 'private';
  sort?: 'created' | 'updated' | 'pushed' | 'full_name';
  per_page?: number;
  page?: number;
}

/** A repository's owner and name. */
export interface GitHubRepoParams {
  owner: string;
  repo: string;
}

/** `POST /repos/{owner}/{repo}/issues`. */
export interface GitHubCreateIssueParams extends GitHubRepoParams {
  title: string;
  body?: string;
  labels?: string[];
  assignees?: string[];
  milestone?: number;
}

/** `GET /repos/{owner}/{repo}/issues/{issue_number}`. */
export interface GitHubGetIssueParams extends GitHubRepoParams {
  issue_number: number;
}

/** `PATCH /repos/{owner}/{repo}/issues/{issue_number}`. */
export interface GitHubUpdateIssueParams extends GitHubGetIssueParams {
  title?: string;
  body?: string;
  state?: 'open' | 'closed';
  state_reason?: 'completed' | 'not_planned' | 'reopened';
  labels?: string[];
  assignees?: string[];
}

/** `POST /repos/{owner}/{repo}/deployments`. */
export interface GitHubCreateDeploymentParams extends GitHubRepoParams {
  /** A branch, tag or SHA. */
  ref: string;
  /** Default `production`. */
  environment?: string;
  task?: string;
  description?: string;
  auto_merge?: boolean;
  /** Status checks that must pass first; `[]` skips them. */
  required_contexts?: string[];
  payload?: Record<string, unknown> | string;
  transient_environment?: boolean;
  production_environment?: boolean;
}

/** `GET /repos/{owner}/{repo}/deployments/{deployment_id}` (and its statuses). */
export interface GitHubDeploymentParams extends GitHubRepoParams {
  deployment_id: number;
}

/** `POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses`. */
export interface GitHubCreateDeploymentStatusParams extends GitHubDeploymentParams {
  state: GitHubDeploymentState;
  description?: string;
  log_url?: string;
  environment_url?: string;
  environment?: string;
  auto_inactive?: boolean;
}

// GraphQL

/** The variables of the `get_user_repos` GraphQL operation (seed 003). */
export interface GitHubUserReposVariables {
  login: string;
  /** Default 10, at most 100. */
  first?: number;
}

/** A GraphQL response: `data`, and `errors` when something (or part of it) failed. */
export interface GitHubGraphQLResponse<T> {
  data: T | null;
  errors?: {
    type?: string;
    path?: (string | number)[];
    locations?: { line: number; column: number }[];
    message: string;
  }[];
}

/** `get_user_repos`' data. */
export interface GitHubUserReposData {
  user: { repositories: { nodes: { name: string; stargazerCount: number }[] } } | null;
}

/** `get_viewer`'s data. */
export interface GitHubViewerData {
  viewer: { login: string; name: string | null };
}
