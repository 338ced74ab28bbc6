/**
 * GitHub's GraphQL API: the seed's `get_user_repos` and `get_viewer`, plus any documents the
 * caller adds.
 */
import { integration, type GraphQLOperationConfig } from '../declarations/config.js';
import { withOverrides, type Connector, type OperationTypes } from './common.js';
import { githubGraphQLMock } from './github-graphql.mock.js';
import { githubDefaults, type GitHubOptions } from './github.js';
import type {
  GitHubUserReposData,
  GitHubUserReposVariables,
  GitHubViewerData,
} from './github.types.js';

/** The operations of {@link githubGraphQL}, with their variables and result (the response's `data`). */
export interface GitHubGraphQLOperations {
  get_user_repos: OperationTypes<GitHubUserReposVariables, GitHubUserReposData>;
  get_viewer: OperationTypes<Record<string, never>, GitHubViewerData>;
}

/** Options of {@link githubGraphQL}. */
export interface GitHubGraphQLOptions extends GitHubOptions {
  /** More documents, callable like the built-in ones (untyped; the mock does not know them). */
  operations?: Readonly<Record<string, GraphQLOperationConfig>>;
}

/** The seed's `get_user_repos` document. */
export const GET_USER_REPOS = `query GetUserRepos($login: String!, $first: Int!) {
  user(login: $login) {
    repositories(first: $first) {
      nodes { name, stargazerCount }
    }
  }
}`;

/**
 * GitHub's GraphQL API, ready to call: `get_user_repos` (the seed's query) and `get_viewer`.
 *
 * Defaults: `https://api.github.com/graphql`; `Authorization: Bearer $GITHUB_TOKEN`; the same
 * timeout, retries, breaker and 5000-an-hour limit as the REST connector (GraphQL's limit is in
 * points; one query is at least one); queries cached for a minute. The result is the response's
 * `data`; a response with `errors` and no `data` fails the call (`integration_graphql_errors`).
 *
 * Mock: repositories derived from the login; a login starting with `missing` gives GitHub's
 * answer for an unknown user, `data: { user: null }` with a `NOT_FOUND` error (so the result is
 * `{ user: null }`).
 *
 * @example
 * ```ts
 * export const ghql = githubGraphQL();
 *
 * const { user } = await use(ctx, ghql).get_user_repos({ login: 'octocat', first: 5 });
 * user?.repositories.nodes.map((r) => r.name);
 * ```
 */
export function githubGraphQL(
  options: GitHubGraphQLOptions = {},
): Connector<GitHubGraphQLOperations> {
  const { operations, ...rest } = options;
  return integration(
    withOverrides(
      {
        name: 'GitHubGraphQL',
        type: 'graphql',
        baseUrl: 'https://api.github.com/graphql',
        ...githubDefaults(options),
        mock: githubGraphQLMock(),
        operations: {
          get_user_repos: {
            query: GET_USER_REPOS,
            variables: {
              login: { type: 'string', required: true },
              first: { type: 'integer', default: 10 },
            },
          },
          get_viewer: { query: 'query GetViewer { viewer { login name } }' },
          ...operations,
        },
      },
      rest,
    ),
  );
}
