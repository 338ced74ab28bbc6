/**
 * What `testApp({ integrations, webhooks })` adds to the engine: the integrations runtime (each
 * integration wrapped so that `t.mock` answers it) and the webhooks extension (with 127.0.0.1
 * allowed, for the captured endpoints), taken the same way `startApp` takes them.
 */
import type { EngineExtension } from '../engine/extension.js';
import type { Engine } from '../engine/engine.js';
import type { Integration } from '../integrations/declarations/config.js';
import {
  createIntegrations,
  type Integrations,
  type IntegrationsOptions,
} from '../integrations/runtime/install.js';
import { createWebhooks, type Webhooks, type WebhooksOptions } from '../webhooks/setup.js';
import type { FakeClock } from './fake-clock.js';
import { IntegrationMocks } from './mocks.js';
import { TestWebhooks } from './webhooks.js';

/** The options of `testApp` that install integrations and webhooks. */
export interface KitOptions {
  /**
   * Declared integrations (or the runtime's options, with `integrations` inside), as
   * `startApp` takes them. In a test app they never reach the network: each answers from what
   * `t.mock` scripts, else from its own mock (connectors have one), else the call fails as not
   * mocked. Retry waits are durable backoffs on the fake clock (`maxInlineWait: 0` unless
   * given). For real HTTP (a local fake server as `baseUrl`), pass
   * `extensions: [createIntegrations(...)]` instead.
   */
  integrations?: readonly Integration[] | IntegrationsOptions;
  /**
   * Webhooks (inbound `receivers`, outbound options), as `startApp` takes them. `127.0.0.1` is
   * added to `allow`, so outbound deliveries can reach the endpoints `t.webhooks.endpoint()`
   * captures.
   */
  webhooks?: WebhooksOptions;
}

/** The test app's integrations and webhooks, before and after the engine starts. */
export class TestKit {
  readonly mocks: IntegrationMocks;
  private readonly integrations: Integrations | undefined;
  private readonly hooks: Webhooks | undefined;
  private webhooksKit: TestWebhooks | undefined;

  constructor(
    clock: FakeClock,
    private readonly options: KitOptions,
  ) {
    this.mocks = new IntegrationMocks(clock);
    const given = options.integrations;
    if (given !== undefined) {
      const runtimeOptions: IntegrationsOptions = Array.isArray(given)
        ? { integrations: given as readonly Integration[] }
        : (given as IntegrationsOptions);
      this.integrations = createIntegrations({
        maxInlineWait: 0,
        ...runtimeOptions,
        integrations: (runtimeOptions.integrations ?? []).map(this.mocks.wrap),
      });
    }
    const hooks = options.webhooks;
    if (hooks !== undefined)
      this.hooks = createWebhooks({ ...hooks, allow: [...(hooks.allow ?? []), '127.0.0.1'] });
  }

  /** The engine's extensions: the kit's first, then the test's own. */
  extensions(own: readonly EngineExtension[] | undefined): EngineExtension[] {
    return [
      ...(this.hooks ? [this.hooks] : []),
      ...(this.integrations ? [this.integrations] : []),
      ...(own ?? []),
    ];
  }

  /** Once the engine has started: the runtime `t.mock` registers late integrations with. */
  started(): void {
    if (this.integrations) this.mocks.runtime = this.integrations.runtime;
  }

  /** `t.webhooks` of the test app. */
  webhooks(engine: Engine, idle: () => Promise<void>): TestWebhooks {
    return (this.webhooksKit ??= new TestWebhooks({
      engine,
      extension: this.hooks,
      receivers: this.options.webhooks?.receivers ?? {},
      idle,
    }));
  }

  /** Closes the kit's servers (before the engine stops). */
  async close(): Promise<void> {
    await this.webhooksKit?.close();
  }
}
