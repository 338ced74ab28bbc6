import type { Definition } from '../core/definitions.js';
import type { Engine } from '../engine/engine.js';
import type { Mount } from '../http/mount.js';
import { receiversMount } from './inbound/receivers.js';
import type { InboundOptions } from './inbound/types.js';
import { adminMount } from './outbound/admin.js';
import type { EndpointInput } from './outbound/endpoint-input.js';
import { parseEndpointInput } from './outbound/endpoint-input.js';
import { resolveOutbound, type ResolvedOutbound } from './outbound/options.js';
import { WEBHOOKS_RUNTIME, WebhooksRuntime } from './outbound/runtime.js';
import { WebhooksService } from './outbound/service.js';
import type { EndpointRecord, OutboundOptions } from './outbound/types.js';
import { kernelOf } from '../engine/kernel.js';

/** Options of {@link createWebhooks}: the outbound side's and the inbound receivers'. */
export interface WebhooksOptions extends OutboundOptions, InboundOptions {}

/** Outbound and inbound webhooks for one engine. */
export interface Webhooks {
  /** The internal delivery service: add it to the engine's services. */
  readonly services: Definition[];
  /** Registers with the engine; call after creating it and before `engine.start()`. */
  attach(engine: Engine): Promise<void>;
  /** The management API, for `AdminOptions.mounts.webhooks`. */
  readonly admin: Mount;
  /** The receivers, for `IngressOptions.mounts.webhooks`. */
  readonly receivers: Mount;
  /** Publishes from outside a handler; with `id`, publishing the same id again is a no-op. */
  publish(
    type: string,
    payload: unknown,
    options?: { id?: string },
  ): Promise<{ id: string; invocationId: string }>;
  /** Creates an endpoint (as `POST /webhooks` does, without the URL's DNS check); returns it with its secret. */
  createEndpoint(input: EndpointInput & { url: string }): Promise<EndpointRecord>;
  /** The attached runtime (endpoints, delivery log, breakers). */
  readonly runtime: WebhooksRuntime;
  /** Closes the outbound connection pools; call after the engine stopped. */
  close(): Promise<void>;
}

/**
 * Sets up webhooks for an engine: outbound delivery (endpoints, `publish`, retries, dead
 * letters, the management API) and inbound receivers. `startApp({ webhooks })` does all the
 * wiring; by hand it is:
 *
 * @example
 * ```ts
 * const hooks = createWebhooks({
 *   receivers: { stripe: { provider: 'stripe', secret: process.env.STRIPE_WEBHOOK_SECRET!, route: (e) => ({ target: Payments, key: e.data.data.object.id, handler: 'onEvent' }) } },
 *   onDeliveryFailed: { target: Ops, handler: 'deliveryFailed' },
 * });
 * const engine = new Engine({ services: [Orders, Payments, Ops, ...hooks.services], store });
 * await hooks.attach(engine);
 * await engine.start();
 * const ingress = await serve(engine, { mounts: { webhooks: hooks.receivers } });
 * const admin = await serveAdmin(engine, { mounts: { webhooks: hooks.admin } });
 * ```
 */
export function createWebhooks(options: WebhooksOptions = {}): Webhooks {
  const resolved: ResolvedOutbound = resolveOutbound(options);
  let runtime: WebhooksRuntime | undefined;
  const rt = (): WebhooksRuntime => {
    if (!runtime) throw new Error('webhooks: call attach(engine) before serving requests');
    return runtime;
  };
  return {
    services: [WebhooksService],
    async attach(engine) {
      if (runtime) throw new Error('webhooks: attach(engine) was called twice');
      if (kernelOf(engine).registry.get(WebhooksService.name) !== WebhooksService)
        throw new TypeError(
          'webhooks: the engine does not serve the delivery service; add ...webhooks.services to its services',
        );
      runtime = new WebhooksRuntime(engine, resolved, options);
      kernelOf(engine).resources.set(WEBHOOKS_RUNTIME, runtime);
    },
    admin: adminMount(rt, options.resolve),
    receivers: receiversMount(() => rt().engine, options),
    publish: (type, payload, o) => rt().publish(type, payload, o?.id),
    async createEndpoint(input) {
      const checked = parseEndpointInput(input, 'create');
      return rt().endpoints.create({ ...checked, url: input.url });
    },
    get runtime() {
      return rt();
    },
    async close() {
      await runtime?.close();
    },
  };
}
