/** Services and their handlers with input schemas, and a form that invokes one. */
import { useState } from 'preact/hooks';
import { api, seg } from './api.js';
import { useLoad } from './hooks.js';
import { href, type Route } from './router.js';
import { exampleOf } from './schema.js';
import type { HandlerInfo, ServiceInfo } from './types.js';
import { ActionButton, Json, Loading, useSession } from './ui.js';

export function ServicesPage({ route }: { route: Route }) {
  const services = useLoad(() => api<{ services: ServiceInfo[] }>('/services'), 'services');
  const [filter, setFilter] = useState('');
  const open = route.path[1];
  const shown = (services.data?.services ?? []).filter((s) =>
    s.name.toLowerCase().includes(filter.toLowerCase()),
  );
  return (
    <section aria-labelledby="svc-title">
      <div class="page-head">
        <h1 id="svc-title">Services</h1>
        <label class="inline">
          Filter
          <input data-filter value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
      </div>
      <Loading error={services.error} loading={services.loading} what="The service list">
        {shown.map((s) => (
          <details key={s.name} class="card service" open={open === s.name || shown.length === 1}>
            <summary>
              <span class="name">{s.name}</span> <span class="badge">{s.kind}</span>{' '}
              <span class="muted small">
                {s.handlers.length} {s.handlers.length === 1 ? 'handler' : 'handlers'}
              </span>
            </summary>
            {s.handlers.map((h) => (
              <HandlerForm key={h.name} service={s} handler={h} />
            ))}
          </details>
        ))}
      </Loading>
    </section>
  );
}

function HandlerForm({ service, handler }: { service: ServiceInfo; handler: HandlerInfo }) {
  const { readOnly } = useSession();
  const [key, setKey] = useState('');
  const [input, setInput] = useState(() =>
    handler.input === undefined ? '' : JSON.stringify(exampleOf(handler.input), null, 2),
  );
  const [mode, setMode] = useState<'send' | 'call'>('call');
  const [result, setResult] = useState<{ invocationId?: string; output?: unknown } | undefined>();
  const keyed = service.kind !== 'service';
  const id = `${service.name}-${handler.name}`;
  const run = async (): Promise<unknown> => {
    setResult(undefined);
    let value: unknown;
    if (input.trim() !== '') {
      try {
        value = JSON.parse(input);
      } catch (e) {
        throw new Error(`the input is not JSON: ${(e as Error).message}`);
      }
    }
    const body: Record<string, unknown> = { mode };
    if (keyed) body.key = key;
    if (value !== undefined) body.input = value;
    return api(`/services/${seg(service.name)}/${seg(handler.name)}/invoke`, {
      method: 'POST',
      body,
    });
  };
  return (
    <form
      class="handler"
      aria-label={`invoke ${service.name}.${handler.name}`}
      data-testid={`invoke-${id}`}
      onSubmit={(e) => e.preventDefault()}
    >
      <h3>
        {handler.name} <span class="badge">{handler.kind}</span>
      </h3>
      {handler.input !== undefined && (
        <details>
          <summary>Input schema</summary>
          <pre>{JSON.stringify(handler.input, null, 2)}</pre>
        </details>
      )}
      <div class="row">
        {keyed && (
          <label>
            Key
            <input name="key" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Mode
          <select
            name="mode"
            value={mode}
            onChange={(e) => setMode(e.currentTarget.value as 'send' | 'call')}
          >
            <option value="call">call (wait for the result)</option>
            <option value="send">send (start it, do not wait)</option>
          </select>
        </label>
      </div>
      <label>
        Input (JSON)
        <textarea
          name="input"
          rows={Math.min(14, Math.max(3, input.split('\n').length))}
          spellcheck={false}
          readOnly={readOnly}
          value={input}
          onInput={(e) => setInput(e.currentTarget.value)}
        />
      </label>
      <ActionButton
        label="Invoke"
        disabled={keyed && key.trim() === ''}
        run={run}
        onDone={(r) => setResult(r as typeof result)}
        testId={`invoke-button-${id}`}
      />
      {result && (
        <div class="banner ok" role="status" data-testid="invoke-result">
          {result.invocationId && (
            <>
              Invocation{' '}
              <a class="mono" href={href(['invocations', result.invocationId])}>
                {result.invocationId}
              </a>
            </>
          )}
          {'output' in result && (
            <div>
              Output: <Json value={result.output} open />
            </div>
          )}
        </div>
      )}
    </form>
  );
}
