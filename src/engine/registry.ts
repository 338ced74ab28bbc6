import { NotFoundError, UsageError, ValidationError } from '../core/errors.js';
import { handlerSpec, type Definition, type HandlerSpec } from '../core/definitions.js';

/** The definitions an engine serves, and the lookups the ingress and calls need. */
export class Registry {
  private readonly byName = new Map<string, Definition>();
  private readonly specs = new Map<string, HandlerSpec>();
  /** Side-by-side versions by name, lowest first (names registered with `version` only). */
  private readonly byVersion = new Map<string, Definition[]>();

  constructor(definitions: Definition[]) {
    const groups = new Map<string, Definition[]>();
    for (const d of definitions) {
      const g = groups.get(d.name);
      if (g) g.push(d);
      else groups.set(d.name, [d]);
      for (const h of Object.keys(d.handlers)) {
        if (!handlerSpec(d, h))
          throw new UsageError(
            `${d.name}.${h} is not a handler: use an async function or handler(options, fn)`,
          );
      }
    }
    for (const [name, group] of groups) {
      if (group.length > 1 || group[0]!.options.version !== undefined) {
        const versions = group.map((d) => d.options.version);
        if (versions.some((v) => v === undefined) || new Set(versions).size !== versions.length)
          throw new UsageError(
            `${group.length} definitions are named "${name}": names must be unique, or each must have its own "version" (side-by-side versions)`,
          );
        const kinds = new Set(group.map((d) => d.kind));
        if (kinds.size > 1)
          throw new UsageError(
            `the versions of "${name}" must all be of one kind (${[...kinds].join(', ')})`,
          );
        group.sort((a, b) => a.options.version! - b.options.version!);
        this.byVersion.set(name, group);
      }
      // The highest version serves new invocations and routing.
      const d = group[group.length - 1]!;
      this.byName.set(name, d);
      for (const h of Object.keys(d.handlers)) this.specs.set(`${name}/${h}`, handlerSpec(d, h)!);
    }
  }

  /**
   * The definition an invocation of `name` runs: the version its journal is pinned to, the
   * lowest for a journal written before versions were declared (non-empty, no marker), else the
   * highest. `undefined` when its pinned version is not registered (any more).
   */
  versionFor(
    name: string,
    pinned: number | undefined,
    journaled: boolean,
  ): { def: Definition | undefined; versioned: boolean } {
    const group = this.byVersion.get(name);
    if (!group) return { def: this.byName.get(name), versioned: false };
    if (pinned !== undefined)
      return { def: group.find((d) => d.options.version === pinned), versioned: true };
    return { def: journaled ? group[0] : group[group.length - 1], versioned: true };
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
