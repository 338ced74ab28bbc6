/**
 * Endpoints, kept in the Store's key-value space (scope `keel.webhooks.endpoints`) and cached
 * in memory: a delivery attempt or a publish reads the cache, not the store. On a store owned by
 * one process the cache is the truth (every change goes through it); on a shared store it is
 * read again after `ttlMs`, so a change made by another process is seen within that time.
 */
import { ConflictError, NotFoundError } from '../../core/errors.js';
import type { Clock } from '../../engine/clock.js';
import type { KvRow, Store } from '../../store/types.js';
import { generateSecret } from '../standard.js';
import { subscribes, type EndpointInput } from './endpoint-input.js';
import { newEndpointId } from './ids.js';
import { SCOPES, type EndpointRecord } from './types.js';

interface Cached {
  record: EndpointRecord;
  version: number;
}

const PAGE = 1000;
const CAS_TRIES = 5;

export class Endpoints {
  private cache = new Map<string, Cached>();
  /** Active endpoints per event type, built on demand, dropped on any change. */
  private byType = new Map<string, EndpointRecord[]>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;
  /** Changes made while a load runs, re-applied after it (the load may have read before them). */
  private duringLoad: Array<Cached | string> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** How long the cache is trusted; Infinity for a store owned by this process. */
    private readonly ttlMs: number,
  ) {}

  /** Every endpoint, oldest id first. */
  async list(): Promise<EndpointRecord[]> {
    await this.fresh();
    return [...this.cache.values()].map((c) => c.record);
  }

  async get(id: string): Promise<EndpointRecord | undefined> {
    await this.fresh();
    return this.cache.get(id)?.record;
  }

  /** An endpoint, or a 404 naming the id. */
  async require(id: string): Promise<EndpointRecord> {
    const found = await this.get(id);
    if (!found) throw new NotFoundError(`no webhook endpoint "${id}"; GET /webhooks lists them`);
    return found;
  }

  /** The active endpoints subscribed to `type`. */
  async matching(type: string): Promise<EndpointRecord[]> {
    await this.fresh();
    let hit = this.byType.get(type);
    if (!hit) {
      hit = [];
      for (const { record } of this.cache.values())
        if (record.is_active && subscribes(record.events, type)) hit.push(record);
      this.byType.set(type, hit);
    }
    return hit;
  }

  async create(input: EndpointInput & { url: string }): Promise<EndpointRecord> {
    const now = new Date(this.clock.now()).toISOString();
    const record: EndpointRecord = {
      id: newEndpointId(),
      ...(input.name !== undefined ? { name: input.name } : {}),
      url: input.url,
      events: input.events ?? ['*'],
      secret: generateSecret(),
      is_active: input.is_active ?? true,
      created_at: now,
      updated_at: now,
    };
    const [r] = await this.store.write([
      { op: 'kv.put', scope: SCOPES.endpoints, key: record.id, value: record, expectVersion: 0 },
    ]);
    this.remember(record, (r as { version: number }).version);
    return record;
  }

  /**
   * Changes an endpoint with compare-and-set, re-reading and re-applying `change` when another
   * writer got there first. `change` returns the new record, or undefined for no change.
   */
  async modify(
    id: string,
    change: (current: EndpointRecord) => EndpointRecord | undefined,
  ): Promise<EndpointRecord> {
    for (let i = 0; i < CAS_TRIES; i++) {
      const row = await this.store.getKv(SCOPES.endpoints, id);
      if (!row) {
        this.forget(id);
        throw new NotFoundError(`no webhook endpoint "${id}"; GET /webhooks lists them`);
      }
      const current = row.value as EndpointRecord;
      const next = change(current);
      if (!next) {
        this.remember(current, row.version);
        return current;
      }
      next.updated_at = new Date(this.clock.now()).toISOString();
      const [r] = await this.store.write([
        { op: 'kv.put', scope: SCOPES.endpoints, key: id, value: next, expectVersion: row.version },
      ]);
      const result = r as { ok: boolean; version: number };
      if (result.ok) {
        this.remember(next, result.version);
        return next;
      }
    }
    throw new ConflictError(
      `webhook endpoint "${id}" changed concurrently ${CAS_TRIES} times; try again`,
      'concurrent_update',
    );
  }

  async update(id: string, input: EndpointInput): Promise<EndpointRecord> {
    return this.modify(id, (current) => {
      const next: EndpointRecord = { ...current };
      if (input.name !== undefined) next.name = input.name;
      if (input.url !== undefined) next.url = input.url;
      if (input.events !== undefined) next.events = input.events;
      if (input.is_active !== undefined) {
        next.is_active = input.is_active;
        if (input.is_active) delete next.disabled_reason;
      }
      return next;
    });
  }

  /** Disables an endpoint (a `410 Gone`); a no-op when it is already inactive or gone. */
  async disable(id: string, reason: string): Promise<void> {
    try {
      await this.modify(id, (current) =>
        current.is_active ? { ...current, is_active: false, disabled_reason: reason } : undefined,
      );
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  async remove(id: string): Promise<void> {
    const [r] = await this.store.write([{ op: 'kv.delete', scope: SCOPES.endpoints, key: id }]);
    this.forget(id);
    if (!(r as { ok: boolean }).ok)
      throw new NotFoundError(`no webhook endpoint "${id}"; GET /webhooks lists them`);
  }

  private remember(record: EndpointRecord, version: number): void {
    this.duringLoad?.push({ record, version });
    const known = this.cache.get(record.id);
    if (known && known.version > version) return;
    this.cache.set(record.id, { record, version });
    this.byType.clear();
  }

  private forget(id: string): void {
    this.duringLoad?.push(id);
    this.cache.delete(id);
    this.byType.clear();
  }

  private fresh(): Promise<void> {
    if (this.clock.now() - this.loadedAt < this.ttlMs) return Promise.resolve();
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<void> {
    const at = this.clock.now();
    const changes: Array<Cached | string> = [];
    this.duringLoad = changes;
    let next: Map<string, Cached>;
    try {
      next = await this.readAll();
    } finally {
      this.duringLoad = undefined;
    }
    this.cache = next;
    this.byType.clear();
    this.loadedAt = at;
    for (const c of changes) {
      if (typeof c === 'string') this.forget(c);
      else this.remember(c.record, c.version);
    }
  }

  private async readAll(): Promise<Map<string, Cached>> {
    const all = new Map<string, Cached>();
    let after: string | undefined;
    for (;;) {
      const page: Array<KvRow & { key: string }> = await this.store.listKv(SCOPES.endpoints, {
        limit: PAGE,
        ...(after !== undefined ? { after } : {}),
      });
      for (const row of page)
        all.set(row.key, { record: row.value as EndpointRecord, version: row.version });
      if (page.length < PAGE) return all;
      after = page[page.length - 1]!.key;
    }
  }
}
