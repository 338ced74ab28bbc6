import { parseDuration } from '../core/duration.js';
import { errorMessage } from '../core/errors.js';
import type { WriteOp } from '../store/types.js';
import type { Kernel } from './kernel.js';

/** Invocations (and key-value records) deleted per write of the retention sweep. */
const CLEANUP_BATCH = 1000;

/**
 * Retention: how long each service's finished invocations are kept, and the sweep that deletes
 * what outlived it (with extensions' expired key-value records).
 */
export class Retention {
  /** Retention by service name, parsed once. */
  private readonly byService = new Map<string, number>();
  private cancel: (() => void) | undefined;

  constructor(private readonly k: Kernel) {}

  /** How long a finished invocation of `service` is kept, in milliseconds. */
  of(service: string): number {
    let ms = this.byService.get(service);
    if (ms === undefined) {
      const def = this.k.registry.get(service);
      ms =
        def?.options.retention !== undefined
          ? parseDuration(def.options.retention)
          : this.k.retentionMs;
      // Only registered services: names from stored rows of removed services are not kept.
      if (def) this.byService.set(service, ms);
    }
    return ms;
  }

  /** Sweeps after `delay` ms, then a few times per retention period until the engine stops. */
  schedule(delay: number): void {
    const { k } = this;
    this.cancel = k.clock.setTimer(delay, () => {
      void this.sweep()
        .catch((err: unknown) =>
          k.log('warn', `retention cleanup failed: ${errorMessage(err)}; retried later`),
        )
        .finally(() => {
          // Retention is coarse (hours): sweeping a few times per retention period is enough.
          if (!k.stopping)
            this.schedule(Math.min(6 * 3_600_000, Math.max(60_000, k.retentionMs / 4)));
        });
    });
  }

  stop(): void {
    this.cancel?.();
  }

  /**
   * Deletes what outlived its retention, 1,000 invocations and 1,000 key-value records per
   * write (small transactions that never hold the store for long), batch after batch until
   * none is full: at thousands of invocations a second, one batch per sweep would fall behind.
   */
  private async sweep(): Promise<void> {
    const { k } = this;
    const now = k.clock.now();
    for (;;) {
      if (k.stopping) return;
      const ids = await k.store.expired(now, CLEANUP_BATCH);
      // Extensions' expired key-value records (delivery logs, caches) go with the same sweep.
      const ops: WriteOp[] = [{ op: 'kv.purge', before: now, limit: CLEANUP_BATCH }];
      for (const id of ids) ops.push({ op: 'invocation.delete', id });
      const [purged] = (await k.store.write(ops)) as [{ deleted: number }];
      if (ids.length < CLEANUP_BATCH && purged.deleted < CLEANUP_BATCH) return;
    }
  }
}
