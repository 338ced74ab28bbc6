import { NotFoundError, UsageError, ValidationError } from '../core/errors.js';
import { handlerSpec, type Definition, type HandlerSpec } from '../core/definitions.js';

/** The definitions an engine serves, and the lookups the ingress and calls need. */
export class Registry {
  private readonly byName = new Map<string, Definition>();
  private readonly specs = new Map<string, HandlerSpec>();

  constructor(definitions: Definition[]) {
    for (const d of definitions) {
      if (this.byName.has(d.name))
        throw new UsageError(`two definitions are named "${d.name}": names must be unique`);
      this.byName.set(d.name, d);
      for (const h of Object.keys(d.handlers)) {
        const spec = handlerSpec(d, h);
        if (!spec)
          throw new UsageError(
            `${d.name}.${h} is not a handler: use an async function or handler(options, fn)`,
          );
        this.specs.set(`${d.name}/${h}`, spec);
      }
    }
  }

  /** A handler's spec by exact names. */
  spec(service: string, handler: string): HandlerSpec | undefined {
    return this.specs.get(`${service}/${handler}`);
  }

  all(): Definition[] {
    return [...this.byName.values()];
  }

  get(name: string): Definition | undefined {
    return this.byName.get(name);
  }

  /**
   * The definition the HTTP ingress may route to: none for an `internal` one, which the ingress
   * treats exactly as a name it does not serve.
   */
  routable(name: string): Definition | undefined {
    const def = this.byName.get(name);
    return def?.options.internal ? undefined : def;
  }

  /**
   * Resolves a target, answering 404s that name what exists. Handler names match exactly, or
   * case-insensitively when that is unambiguous (`/OrderSaga/o-1/Run` reaches `run`).
   */
  resolve(
    service: string,
    handler: string,
    key: string | undefined,
  ): { def: Definition; spec: HandlerSpec } {
    return this.resolveIn(this.byName.get(service), service, handler, key, false);
  }

  /**
   * {@link resolve} as the HTTP ingress sees the definitions: an `internal` one is unknown, and
   * the 404's list of what exists leaves internal ones out.
   */
  resolveRoutable(
    service: string,
    handler: string,
    key: string | undefined,
  ): { def: Definition; spec: HandlerSpec } {
    return this.resolveIn(this.routable(service), service, handler, key, true);
  }

  private resolveIn(
    def: Definition | undefined,
    service: string,
    handler: string,
    key: string | undefined,
    routableOnly: boolean,
  ): { def: Definition; spec: HandlerSpec } {
    if (!def) {
      const defs = [...this.byName.values()];
      const shown = routableOnly ? defs.filter((d) => !d.options.internal) : defs;
      const names =
        shown
          .map((d) => d.name)
          .sort()
          .join(', ') || '(none)';
      throw new NotFoundError(
        `no service, object or workflow named "${service}"; this engine serves: ${names}`,
      );
    }
    let spec = this.specs.get(`${service}/${handler}`);
    if (!spec) {
      const lower = handler.toLowerCase();
      const matches = Object.keys(def.handlers).filter((h) => h.toLowerCase() === lower);
      if (matches.length === 1) spec = this.specs.get(`${service}/${matches[0]}`);
    }
    if (!spec) {
      throw new NotFoundError(
        `${def.kind} "${service}" has no handler "${handler}"; its handlers are: ${Object.keys(def.handlers).sort().join(', ')}`,
      );
    }
    if (def.kind === 'service' && key) {
      throw new NotFoundError(
        `"${service}" is a service and takes no key: use /${service}/${spec.name}`,
      );
    }
    if (def.kind !== 'service' && !key) {
      throw new ValidationError(
        `"${service}" is a ${def.kind}: a key is required, as in /${service}/{key}/${spec.name}`,
      );
    }
    return { def, spec };
  }
}
