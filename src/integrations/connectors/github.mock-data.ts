/**
 * The objects GitHub's mocks answer with (users, repositories, issues, deployments, statuses),
 * each derived from its names so the same request always describes the same object.
 */
import { hexId, MOCK_EPOCH_S, mockTimestamp, numberFrom } from './mock-kit.js';
import type {
  GitHubDeployment,
  GitHubDeploymentState,
  GitHubDeploymentStatus,
  GitHubIssue,
  GitHubLabel,
  GitHubRepo,
  GitHubSimpleUser,
  GitHubUser,
} from './github.types.js';

export const API = 'https://api.github.com';
/** The login the mock's token belongs to (`GET /user`). */
export const GITHUB_MOCK_LOGIN = 'keel-bot';

/** The deterministic user for a login. */
export function mockGitHubUser(login: string): GitHubUser {
  const id = 1000 + numberFrom(90_000_000, 'user', login.toLowerCase());
  const created = iso(MOCK_EPOCH_S - 86_400 * (365 + numberFrom(3000, 'age', login)));
  return {
    login,
    id,
    node_id: nodeId('U_kg', id),
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
    gravatar_id: '',
    url: `${API}/users/${login}`,
    html_url: `https://github.com/${login}`,
    repos_url: `${API}/users/${login}/repos`,
    type: 'User',
    site_admin: false,
    name: titleCase(login),
    company: null,
    blog: '',
    location: null,
    email: null,
    bio: null,
    public_repos: 3 + numberFrom(60, 'repos', login),
    public_gists: numberFrom(20, 'gists', login),
    followers: numberFrom(5000, 'followers', login),
    following: numberFrom(200, 'following', login),
    created_at: created,
    updated_at: iso(mockTimestamp('updated', login)),
  };
}

/** The deterministic repository for an owner and name. */
export function mockGitHubRepo(owner: string, name: string): GitHubRepo {
  const id = 10_000_000 + numberFrom(800_000_000, 'repo', owner, name);
  return {
    id,
    node_id: nodeId('R_kg', id),
    name,
    full_name: `${owner}/${name}`,
    owner: simple(owner),
    private: false,
    html_url: `https://github.com/${owner}/${name}`,
    description: `${titleCase(name)} (mock repository)`,
    fork: false,
    url: `${API}/repos/${owner}/${name}`,
    default_branch: 'main',
    language: (['TypeScript', 'Go', 'Rust', 'Python'] as const)[
      numberFrom(4, 'lang', owner, name)
    ]!,
    stargazers_count: numberFrom(10_000, 'stars', owner, name),
    watchers_count: numberFrom(10_000, 'stars', owner, name),
    forks_count: numberFrom(500, 'forks', owner, name),
    open_issues_count: numberFrom(50, 'issues', owner, name),
    visibility: 'public',
    created_at: iso(MOCK_EPOCH_S - 86_400 * (30 + numberFrom(2000, 'age', owner, name))),
    updated_at: iso(mockTimestamp('updated', owner, name)),
    pushed_at: iso(mockTimestamp('pushed', owner, name)),
  };
}

/** The names of a user's mock repositories, in a stable order. */
export function mockRepoNames(login: string, count: number): string[] {
  const words = ['api', 'web', 'cli', 'infra', 'docs', 'sdk', 'worker', 'dashboard', 'bot', 'lib'];
  return Array.from(
    { length: count },
    (_, i) => `${words[(i + numberFrom(10, login)) % 10]}-${i + 1}`,
  );
}

export function makeIssue(
  owner: string,
  repo: string,
  number: number,
  b: Record<string, unknown>,
): GitHubIssue {
  const id = 1_000_000_000 + numberFrom(1_000_000_000, 'issue', owner, repo, number);
  const created = iso(mockTimestamp('issue', owner, repo, number));
  return {
    id,
    node_id: nodeId('I_kw', id),
    url: `${API}/repos/${owner}/${repo}/issues/${number}`,
    html_url: `https://github.com/${owner}/${repo}/issues/${number}`,
    number,
    state: 'open',
    state_reason: null,
    title: String(b.title),
    body: typeof b.body === 'string' ? b.body : null,
    user: simple(GITHUB_MOCK_LOGIN),
    labels: Array.isArray(b.labels) ? labels(b.labels) : [],
    assignees: Array.isArray(b.assignees) ? (b.assignees as string[]).map(simple) : [],
    comments: 0,
    created_at: created,
    updated_at: created,
    closed_at: null,
  };
}

export function makeDeployment(
  owner: string,
  repo: string,
  id: number,
  b: Record<string, unknown>,
): GitHubDeployment {
  const ref = String(b.ref);
  const environment = typeof b.environment === 'string' ? b.environment : 'production';
  const created = iso(mockTimestamp('deployment', id));
  return {
    url: `${API}/repos/${owner}/${repo}/deployments/${id}`,
    id,
    node_id: nodeId('DE_kw', id),
    sha: /^[0-9a-f]{40}$/.test(ref) ? ref : hexId(40, 'sha', owner, repo, ref),
    ref,
    task: typeof b.task === 'string' ? b.task : 'deploy',
    payload: (b.payload as GitHubDeployment['payload'] | undefined) ?? {},
    original_environment: environment,
    environment,
    description: typeof b.description === 'string' ? b.description : null,
    creator: simple(GITHUB_MOCK_LOGIN),
    created_at: created,
    updated_at: created,
    statuses_url: `${API}/repos/${owner}/${repo}/deployments/${id}/statuses`,
    repository_url: `${API}/repos/${owner}/${repo}`,
    transient_environment: b.transient_environment === true,
    production_environment:
      b.production_environment === undefined
        ? environment === 'production'
        : b.production_environment === true,
  };
}

/** `seq` orders statuses in time: automatic ones are negative (before any created through the API). */
export function makeStatus(
  d: GitHubDeployment,
  state: GitHubDeploymentState,
  seq: number,
  b: Record<string, unknown>,
): GitHubDeploymentStatus {
  const id = 1_000_000_000 + numberFrom(1_000_000_000, 'status', d.id, state, seq);
  const created = iso(Date.parse(d.created_at) / 1000 + 60 * (seq < 0 ? -seq : 10 + seq));
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  return {
    url: `${d.url}/statuses/${id}`,
    id,
    node_id: nodeId('DES_kw', id),
    state,
    creator: simple(GITHUB_MOCK_LOGIN),
    description: text(b.description),
    environment: typeof b.environment === 'string' ? b.environment : d.environment,
    target_url: text(b.log_url),
    log_url: text(b.log_url),
    environment_url: text(b.environment_url),
    created_at: created,
    updated_at: created,
    deployment_url: d.url,
    repository_url: d.repository_url,
  };
}

export function simple(login: string): GitHubSimpleUser {
  const u = mockGitHubUser(login);
  return {
    login,
    id: u.id,
    node_id: u.node_id,
    avatar_url: u.avatar_url,
    url: u.url,
    html_url: u.html_url,
    type: u.type,
    site_admin: u.site_admin,
  };
}

export function labels(names: unknown[]): GitHubLabel[] {
  return names.map((n) => {
    const name = String(n);
    const id = numberFrom(1_000_000_000, 'label', name);
    return {
      id,
      node_id: nodeId('LA_kw', id),
      name,
      color: hexId(6, 'color', name),
      default: false,
    };
  });
}

export function nodeId(prefix: string, id: number): string {
  return `${prefix}${Buffer.from(`mock:${id}`).toString('base64url')}`;
}

export function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function titleCase(s: string): string {
  return s
    .split(/[-_.]/)
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}
