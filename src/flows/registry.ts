/**
 * Flow definitions, versioned, in the store's key-value space (so every process sharing the
 * store sees them, and they survive restarts):
 *
 * - `keel.flows.versions` / `{name}@{version, 10 digits}`: each registered version, never
 *   changed once written (a run journals the version it started with and reads it here);
 * - `keel.flows.heads` / `{name}`: `{ version }`, the latest.
 *
 * Registering takes version n+1 with a compare-and-set on the versioned key (absent → written),
 * then moves the head with a compare-and-set too; two processes registering at once get two
 * different versions. A crash between the two writes leaves a version the head does not point
 * at yet: the next registration finds it taken, moves the head to it, and tries the next one.
 * A definition identical to the latest version is not registered again (files read at every
 * start do not pile up versions).
 */
import type { Clock } from '../engine/clock.js';
import type { Store } from '../store/types.js';
import { FlowNotFoundError } from './errors.js';
import type { FlowVersion } from './types.js';
import { compileFlow, type CompiledFlow, type FlowEnvironment } from './validate.js';

export const HEADS_SCOPE = 'keel.flows.heads';
export const VERSIONS_SCOPE = 'keel.flows.versions';

const versionKey = (name: string, version: number): string =>
  `${name}@${String(version).padStart(10, '0')}`;

/** What a registration did. */
export interface Registration {
  name: string;
  version: number;
  /** False when the definition equals the latest version, which is returned instead. */
  created: boolean;
}

/** The definitions of one engine's store, with a cache of compiled versions. */
export class FlowRegistry {
  /** Compiled versions by `name@version`: a version never changes, so it is cached for good. */
  private readonly compiled = new Map<string, CompiledFlow>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly env: () => FlowEnvironment,
  ) {}

  /** Checks a definition without registering it. */
  check(raw: unknown): CompiledFlow {
    return compileFlow(raw, this.env());
  }

  /**
   * Validates and registers a definition as the next version of its name.
   *
   * @example
   * ```ts
   * const { version } = await registry.register({ name: 'greet', steps: [...] });
   * ```
   */
  async register(raw: unknown): Promise<Registration> {
    const flow = this.check(raw);
    const name = flow.name;
    const text = JSON.stringify(flow.definition);
    for (let round = 0; round < 100; round++) {
      const head = await this.store.getKv(HEADS_SCOPE, name);
      const latest = head === undefined ? 0 : (head.value as { version: number }).version;
      if (latest > 0) {
        const row = await this.store.getKv(VERSIONS_SCOPE, versionKey(name, latest));
        if (row !== undefined && JSON.stringify((row.value as FlowVersion).definition) === text)
          return { name, version: latest, created: false };
      }
      const version = latest + 1;
      const record: FlowVersion = {
        name,
        version,
        definition: flow.definition,
        registeredAt: new Date(this.clock.now()).toISOString(),
      };
      const [taken] = await this.store.write([
        {
          op: 'kv.put',
          scope: VERSIONS_SCOPE,
          key: versionKey(name, version),
          value: record,
          expectVersion: 0,
        },
      ]);
      const ok = (taken as { ok: boolean }).ok;
      // Moved on whether we took the version or found it taken (another process, or a crash
      // between the two writes): a failed compare-and-set means someone moved it already.
      await this.store.write([
        {
          op: 'kv.put',
          scope: HEADS_SCOPE,
          key: name,
          value: { version },
          expectVersion: head?.version ?? 0,
        },
      ]);
      if (ok) {
        this.compiled.set(`${name}@${version}`, flow);
        return { name, version, created: true };
      }
    }
    throw new Error(`flows: could not register ${name}: too many concurrent registrations`);
  }

  /** The latest version number of `name`, or undefined. */
  async latest(name: string): Promise<number | undefined> {
    const head = await this.store.getKv(HEADS_SCOPE, name);
    return head === undefined ? undefined : (head.value as { version: number }).version;
  }

  /** One version (the latest when `version` is undefined); throws `flow_not_found`. */
  async get(name: string, version?: number): Promise<FlowVersion> {
    const v = version ?? (await this.latest(name));
    if (v === undefined) throw new FlowNotFoundError(`no flow named "${name}" is registered`);
    const row = await this.store.getKv(VERSIONS_SCOPE, versionKey(name, v));
    if (row === undefined) throw new FlowNotFoundError(`flow "${name}" has no version ${v}`);
    return row.value as FlowVersion;
  }

  /** The compiled form of a stored version (compiled without re-checking the environment). */
  compile(record: FlowVersion): CompiledFlow {
    const key = `${record.name}@${record.version}`;
    let flow = this.compiled.get(key);
    if (flow === undefined) {
      // A version was valid when registered; integrations or transforms removed since then
      // fail its steps when they run, not its compilation.
      flow = compileFlow(record.definition, { transforms: ANY });
      this.compiled.set(key, flow);
    }
    return flow;
  }

  /** Every flow's name and latest version, in name order. */
  async list(): Promise<Array<{ name: string; version: number }>> {
    const out: Array<{ name: string; version: number }> = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listKv(HEADS_SCOPE, {
        limit: 500,
        ...(after ? { after } : {}),
      });
      for (const row of page)
        out.push({ name: row.key, version: (row.value as { version: number }).version });
      if (page.length < 500) return out;
      after = page[page.length - 1]!.key;
    }
  }

  /** The versions of one flow, oldest first. */
  async versions(name: string): Promise<FlowVersion[]> {
    const out: FlowVersion[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listKv(VERSIONS_SCOPE, {
        prefix: `${name}@`,
        limit: 500,
        ...(after ? { after } : {}),
      });
      for (const row of page) out.push(row.value as FlowVersion);
      if (page.length < 500) return out;
      after = page[page.length - 1]!.key;
    }
  }
}

/** A transform set that contains every name (for compiling versions already validated). */
const ANY: ReadonlySet<string> = new (class extends Set<string> {
  override has(): boolean {
    return true;
  }
})();
