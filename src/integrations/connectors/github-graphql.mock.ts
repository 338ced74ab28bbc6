/**
 * GitHub's GraphQL API in-process, for the connector's own documents (`get_user_repos`,
 * `get_viewer`). As on GitHub, errors come back with status 200: an unknown login gives
 * `{ data: { user: null }, errors: [{ type: 'NOT_FOUND', ... }] }` (any login starting with
 * `missing`); a document the mock does not know gives an `errors`-only answer.
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  bodyObject,
  connectorMock,
  isMissing,
  json,
  numberFrom,
  type ConnectorMock,
} from './mock-kit.js';
import { GITHUB_MOCK_LOGIN, mockRepoNames } from './github.mock-data.js';

/**
 * A GitHub GraphQL mock.
 *
 * @example
 * ```ts
 * const gql = githubGraphQL({ mock: githubGraphQLMock(), mockMode: true });
 * ```
 */
export function githubGraphQLMock(): ConnectorMock {
  return connectorMock(
    () => answer,
    (status) => json(status, { message: status >= 500 ? 'Server Error' : 'Mock failure' }),
  );
}

function answer(req: MockRequest): MockResponse {
  if (req.method !== 'POST') return json(404, { message: 'Not Found' });
  const b = bodyObject(req.body);
  const query = typeof b.query === 'string' ? b.query : '';
  const variables = (b.variables ?? {}) as Record<string, unknown>;
  if (query.trim() === '') {
    return json(200, {
      errors: [{ message: 'A query attribute must be specified and must be a string.' }],
    });
  }
  if (/\buser\s*\(\s*login\s*:/.test(query) && /\brepositories\s*\(/.test(query)) {
    const login = typeof variables.login === 'string' ? variables.login : '';
    if (login === '' || isMissing(login)) {
      return json(200, {
        data: { user: null },
        errors: [
          {
            type: 'NOT_FOUND',
            path: ['user'],
            locations: [{ line: 2, column: 3 }],
            message: `Could not resolve to a User with the login of '${login}'.`,
          },
        ],
      });
    }
    const first = Math.min(100, Math.max(1, Number(variables.first ?? 10) || 10));
    const total = 3 + numberFrom(20, 'repos', login);
    const nodes = mockRepoNames(login, Math.min(first, total)).map((name) => ({
      name,
      stargazerCount: numberFrom(10_000, 'stars', login, name),
    }));
    return json(200, { data: { user: { repositories: { nodes } } } });
  }
  if (/\bviewer\b/.test(query)) {
    return json(200, { data: { viewer: { login: GITHUB_MOCK_LOGIN, name: 'Keel Bot' } } });
  }
  return json(200, {
    errors: [
      {
        message: `The Keel mock for GitHub GraphQL does not know this document (operation ${req.operation}); give your own mock, or call the real API`,
      },
    ],
  });
}
