/** Objects and workflows: their keys, each key's state, and editing a value. */
import { useState } from 'preact/hooks';
import { api, qs, seg } from './api.js';
import { useLoad } from './hooks.js';
import { href, navigate, type Route } from './router.js';
import type { ServiceInfo } from './types.js';
import { ActionButton, ErrorBanner, Loading, useSession } from './ui.js';

export function StatePage({ route }: { route: Route }) {
  const [, service, key] = route.path;
  return (
    <section aria-labelledby="state-title">
      <div class="page-head">
        <h1 id="state-title">Objects &amp; workflows</h1>
      </div>
      <div class="split">
        <ServicePicker current={service} />
        <div>
          {service === undefined ? (
            <p class="muted">Pick an object or workflow to browse its keys.</p>
          ) : key === undefined ? (
            <Keys service={service} cursor={route.query.get('cursor') ?? undefined} />
          ) : (
            <KeyState service={service} stateKey={key} />
          )}
        </div>
      </div>
    </section>
  );
}

function ServicePicker({ current }: { current: string | undefined }) {
  const services = useLoad(() => api<{ services: ServiceInfo[] }>('/services'), 'services');
  const [typed, setTyped] = useState('');
  const keyed = services.data?.services.filter((s) => s.kind !== 'service') ?? [];
  return (
    <nav class="side" aria-label="Objects and workflows">
      {services.error?.notAvailable ? null : (
        <Loading error={services.error} loading={services.loading} what="The service list">
          <ul class="plain">
            {keyed.map((s) => (
              <li key={s.name}>
                <a
                  href={href(['state', s.name])}
                  aria-current={current === s.name ? 'page' : undefined}
                >
                  {s.name} <span class="muted small">{s.kind}</span>
                </a>
              </li>
            ))}
          </ul>
          {services.data && keyed.length === 0 && <p class="muted">No object or workflow.</p>}
        </Loading>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (typed.trim()) navigate(href(['state', typed.trim()]));
        }}
      >
        <label>
          Object or workflow
          <input
            data-filter
            value={typed}
            onInput={(e) => setTyped(e.currentTarget.value)}
            placeholder="name"
          />
        </label>
      </form>
    </nav>
  );
}

function Keys({ service, cursor }: { service: string; cursor: string | undefined }) {
  const keys = useLoad(
    () =>
      api<{ keys: Array<{ key: string }>; nextCursor?: string }>(
        `/state/${seg(service)}${qs({ cursor, limit: 100 })}`,
      ),
    `${service}|${cursor ?? ''}`,
  );
  return (
    <>
      <h2>{service}</h2>
      <Loading error={keys.error} loading={keys.loading} what="Browsing state">
        {keys.data && (
          <>
            {keys.data.keys.length === 0 && <p class="empty">No key has state.</p>}
            <ul class="plain keys">
              {keys.data.keys.map((k) => (
                <li key={k.key}>
                  <a class="mono" href={href(['state', service, k.key])}>
                    {k.key}
                  </a>
                </li>
              ))}
            </ul>
            <nav class="pager" aria-label="Pages">
              <button
                type="button"
                disabled={cursor === undefined}
                onClick={() => navigate(href(['state', service]))}
              >
                First
              </button>
              <button
                type="button"
                disabled={keys.data.nextCursor === undefined}
                onClick={() =>
                  navigate(href(['state', service], { cursor: keys.data?.nextCursor }))
                }
              >
                More
              </button>
            </nav>
          </>
        )}
      </Loading>
    </>
  );
}

function KeyState({ service, stateKey }: { service: string; stateKey: string }) {
  const path = `/state/${seg(service)}/${seg(stateKey)}`;
  const state = useLoad(
    () => api<{ state: Record<string, unknown> }>(path),
    `${service}/${stateKey}`,
  );
  return (
    <>
      <p class="crumbs">
        <a href={href(['state', service])}>{service}</a> /
      </p>
      <h2 class="mono">{stateKey}</h2>
      <Loading error={state.error} loading={state.loading} what="Browsing state">
        {state.data && (
          <>
            {Object.keys(state.data.state).length === 0 && <p class="empty">No state.</p>}
            {Object.entries(state.data.state).map(([name, value]) => (
              <StateValue
                key={`${name}:${JSON.stringify(value)}`}
                path={path}
                name={name}
                value={value}
                onSaved={state.reload}
              />
            ))}
            <NewValue path={path} onSaved={state.reload} />
          </>
        )}
      </Loading>
    </>
  );
}

function StateValue({
  path,
  name,
  value,
  onSaved,
}: {
  path: string;
  name: string;
  value: unknown;
  onSaved: () => void;
}) {
  const { readOnly } = useSession();
  const original = JSON.stringify(value, null, 2) ?? 'null';
  const [text, setText] = useState(original);
  const [invalid, setInvalid] = useState<string | undefined>(undefined);
  const parse = (): unknown => {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`not JSON: ${(e as Error).message}`);
    }
  };
  return (
    <div class="card state-value">
      <label>
        <span class="mono">{name}</span>
        <textarea
          rows={Math.min(12, Math.max(2, text.split('\n').length))}
          spellcheck={false}
          readOnly={readOnly}
          value={text}
          onInput={(e) => {
            setText(e.currentTarget.value);
            setInvalid(undefined);
          }}
        />
      </label>
      {invalid && <ErrorBanner error={invalid} />}
      <div class="actions">
        <ActionButton
          label="Save"
          disabled={text === original}
          run={async () => {
            let v: unknown;
            try {
              v = parse();
            } catch (e) {
              setInvalid((e as Error).message);
              return;
            }
            await api(`${path}/${seg(name)}`, { method: 'PUT', body: v });
          }}
          onDone={onSaved}
        />
        <ActionButton
          label="Delete"
          danger
          confirm={`Delete "${name}"?`}
          run={() => api(`${path}/${seg(name)}`, { method: 'DELETE' })}
          onDone={onSaved}
        />
      </div>
    </div>
  );
}

/** Sets a state value the key does not have yet. */
function NewValue({ path, onSaved }: { path: string; onSaved: () => void }) {
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  return (
    <details class="card">
      <summary>Add a value</summary>
      <label>
        Name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Value (JSON)
        <textarea rows={3} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <ActionButton
        label="Set"
        disabled={name.trim() === ''}
        run={async () => {
          let v: unknown;
          try {
            v = JSON.parse(text);
          } catch (e) {
            throw new Error(`the value is not JSON: ${(e as Error).message}`);
          }
          await api(`${path}/${seg(name.trim())}`, { method: 'PUT', body: v });
        }}
        onDone={onSaved}
      />
    </details>
  );
}
