/**
 * The Keel dashboard: a single page on the admin server. Views are hash routes; data comes
 * from the admin API with the token the user logs in with (sessionStorage only).
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, getToken, onUnauthorized, setToken } from './api.js';
import { InvocationsPage } from './invocations.js';
import { InvocationPage } from './invocation.js';
import { IntegrationsPage } from './integrations.js';
import { ServicesPage } from './services.js';
import { QueuesPage } from './queues.js';
import { StatePage } from './state.js';
import { WebhooksPage } from './webhooks.js';
import { href, useRoute } from './router.js';
import { ErrorBanner, SessionContext, type Session } from './ui.js';

const THEME_KEY = 'keel.theme';
type Theme = 'light' | 'dark';

function systemTheme(): Theme {
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function storedTheme(): Theme | undefined {
  const t = localStorage.getItem(THEME_KEY);
  return t === 'light' || t === 'dark' ? t : undefined;
}

/** Light or dark: the system's, until the user picks one (kept in localStorage). */
function useTheme(): [Theme, () => void] {
  const [chosen, setChosen] = useState<Theme | undefined>(storedTheme);
  const [system, setSystem] = useState<Theme>(systemTheme);
  useEffect(() => {
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const on = (): void => setSystem(mq.matches ? 'dark' : 'light');
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  const theme = chosen ?? system;
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);
  const toggle = (): void => {
    const next: Theme = theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem(THEME_KEY, next);
    setChosen(next);
  };
  return [theme, toggle];
}

/** `/` focuses the page's main filter, unless the user is typing somewhere. */
function useSlashToFilter(): void {
  useEffect(() => {
    const on = (e: KeyboardEvent): void => {
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
      const filter = document.querySelector<HTMLElement>('[data-filter]');
      if (filter) {
        e.preventDefault();
        filter.focus();
      }
    };
    addEventListener('keydown', on);
    return () => removeEventListener('keydown', on);
  }, []);
}

type Auth =
  | { state: 'checking' }
  | { state: 'login'; error?: string }
  | { state: 'in'; session: Session }
  | { state: 'down'; error: ApiError };

/** Who the token is: `GET /whoami`, or (older servers) whether a read is allowed at all. */
async function whoami(): Promise<Session> {
  try {
    const { role } = await api<{ role: string }>('/whoami');
    return { role, readOnly: role !== 'admin' };
  } catch (e) {
    if (!(e instanceof ApiError) || !e.notAvailable) throw e;
    await api('/invocations?limit=1');
    return { role: undefined, readOnly: false };
  }
}

function Login({ error, onToken }: { error?: string; onToken: (token: string) => void }) {
  const [token, setValue] = useState('');
  return (
    <main class="login">
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim() !== '') onToken(token.trim());
        }}
      >
        <h1>Keel</h1>
        <p>This admin server needs a token. It is kept in this tab only, never stored on disk.</p>
        <label>
          Token
          <input
            type="password"
            name="token"
            autoComplete="off"
            autoFocus
            value={token}
            onInput={(e) => setValue(e.currentTarget.value)}
            aria-describedby={error ? 'login-error' : undefined}
          />
        </label>
        {error && (
          <p id="login-error" class="banner error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary">
          Sign in
        </button>
        <p class="muted small">
          The admin token (<code>KEEL_ADMIN_TOKEN</code>) may act; the read-only token (
          <code>KEEL_USER_TOKEN</code>) may look.
        </p>
      </form>
    </main>
  );
}

const NAV: Array<[string, string]> = [
  ['invocations', 'Invocations'],
  ['state', 'Objects & workflows'],
  ['services', 'Services'],
  ['queues', 'Queues'],
  ['integrations', 'Integrations'],
  ['webhooks', 'Webhooks'],
];

function App() {
  const [theme, toggleTheme] = useTheme();
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const route = useRoute();
  useSlashToFilter();

  const check = (): void => {
    const hadToken = getToken() !== undefined;
    whoami().then(
      (session) => setAuth({ state: 'in', session }),
      (e: unknown) => {
        if (e instanceof ApiError && e.status === 401) {
          setToken(undefined);
          setAuth({
            state: 'login',
            ...(hadToken ? { error: 'That token was refused (401): check it and try again.' } : {}),
          });
        } else setAuth({ state: 'down', error: e as ApiError });
      },
    );
  };
  useEffect(check, []);
  useEffect(
    () =>
      onUnauthorized(() => {
        setToken(undefined);
        setAuth({ state: 'login', error: 'The server asked for a token again (401).' });
      }),
    [],
  );

  if (auth.state === 'checking') return <p class="muted pad">Connecting…</p>;
  if (auth.state === 'down')
    return (
      <main class="pad">
        <ErrorBanner error={auth.error} />
        <button type="button" onClick={check}>
          Try again
        </button>
      </main>
    );
  if (auth.state === 'login')
    return (
      <Login
        {...(auth.error ? { error: auth.error } : {})}
        onToken={(t) => {
          setToken(t);
          check();
        }}
      />
    );

  const section = route.path[0] ?? 'invocations';
  let page;
  if (section === 'invocations' && route.path[1] !== undefined)
    page = <InvocationPage id={route.path[1]} />;
  else if (section === 'state') page = <StatePage route={route} />;
  else if (section === 'services') page = <ServicesPage route={route} />;
  else if (section === 'integrations') page = <IntegrationsPage />;
  else if (section === 'queues') page = <QueuesPage />;
  else if (section === 'webhooks') page = <WebhooksPage route={route} />;
  else page = <InvocationsPage route={route} />;

  const { session } = auth;
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), focusMain())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href(['invocations'])}>
          Keel
        </a>
        <nav aria-label="Sections">
          {NAV.map(([id, label]) => (
            <a key={id} href={href([id])} aria-current={section === id ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <span class="role" data-testid="role" title="the role of your token">
          {session.role ?? 'signed in'}
          {session.readOnly && <span class="badge">read-only</span>}
        </span>
        <button
          type="button"
          onClick={toggleTheme}
          aria-label={`switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}
        >
          {theme === 'dark' ? 'Light' : 'Dark'}
        </button>
        {getToken() !== undefined && (
          <button
            type="button"
            onClick={() => {
              setToken(undefined);
              setAuth({ state: 'login' });
            }}
          >
            Sign out
          </button>
        )}
      </header>
      {session.readOnly && (
        <div class="banner calm" role="status" data-testid="read-only-banner">
          Signed in with a read-only token: you can look at everything, and every change is refused.
        </div>
      )}
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </SessionContext.Provider>
  );
}

function focusMain(): void {
  document.getElementById('main')?.focus();
}

render(<App />, document.getElementById('app')!);
