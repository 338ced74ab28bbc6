import { describeMount } from '../http/mount-doc.js';
import { KeelError, UsageError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { EngineExtension } from '../engine/extension.js';
import type { Mount } from '../http/mount.js';
import { FlowDefinitionError } from './errors.js';
import { FlowsWorkflow } from './execute.js';
import { adminMount, ingressMount } from './http.js';
import { readFlowDir } from './parse.js';
import type { Registration } from './registry.js';
import { FLOWS_RUNTIME, FlowsRuntime, type FlowDatabase, type FlowTransform } from './runtime.js';
import type { FlowDefinition } from './types.js';

/** Options of {@link createFlows}. */
export interface FlowsOptions {
  /**
   * A directory of definitions (`*.json`, `*.yaml`, `*.yml`) registered when the engine starts
   * (`KEEL_FLOWS_DIR` with `startApp`). A file whose definition equals the latest version of its
   * name registers nothing; a changed one becomes the next version. An invalid file fails the
   * start, naming the file and the step.
   */
  dir?: string;
  /** Definitions registered when the engine starts, as the files are. */
  definitions?: readonly FlowDefinition[];
  /** Functions `transform` steps call by name (`function: total`). */
  transforms?: Readonly<Record<string, FlowTransform>>;
  /** Databases `database` steps use by name. */
  databases?: Readonly<Record<string, FlowDatabase>>;
}

/** Declarative flows on one engine: an {@link EngineExtension} named `flows`. */
export interface Flows extends EngineExtension {
  readonly name: 'flows';
  readonly mounts: { readonly ingress: Mount; readonly admin: Mount };
  /** The installed runtime (its `registry` registers and reads definitions); throws before start. */
  readonly runtime: FlowsRuntime;
  /** What the start registered from `dir` and `definitions`. */
  readonly registered: readonly Registration[];
  /**
   * Adds a directory of definitions read at start, like `dir` (what `startApp({ flowsDir })`
   * and `KEEL_FLOWS_DIR` do when the app's extensions already have the flows extension).
   */
  addDirectory(dir: string): void;
}

/**
 * Declarative workflows (JSON or YAML) run durably by the engine: see docs/flows.md. Adds the
 * `keel.flows` workflow, `POST /flows/{name}/run` on the ingress and `/flows/definitions` on
 * the admin API.
 *
 * @example
 * ```ts
 * const flows = createFlows({
 *   dir: 'flows',
 *   transforms: { total: (items) => (items as { price: number }[]).reduce((s, i) => s + i.price, 0) },
 * });
 * const app = await startApp({ services, integrations: [inventory, payments], extensions: [flows] });
 * const result = await runFlow(app.engine, 'order-saga', { orderId: 'o-1' });
 * ```
 */
export function createFlows(options: FlowsOptions = {}): Flows {
  let runtime: FlowsRuntime | undefined;
  let engine: Engine | undefined;
  const registered: Registration[] = [];
  const dirs = new Set<string>(options.dir === undefined ? [] : [options.dir]);
  const rt = (): FlowsRuntime => {
    if (!runtime)
      throw new KeelError('flows: the engine has not started yet', {
        code: 'engine_not_started',
        status: 503,
      });
    return runtime;
  };
  for (const [name, fn] of Object.entries(options.transforms ?? {}))
    if (typeof fn !== 'function')
      throw new UsageError(`flows: transform "${name}" is not a function`);
  return {
    name: 'flows',
    services: [FlowsWorkflow],
    async install(host) {
      // Installed again only by a new engine (startApp retrying a start): that one takes over.
      const made = new FlowsRuntime(host, options.transforms ?? {}, options.databases ?? {});
      host.provide(FLOWS_RUNTIME, made);
      const sources: Array<{ file: string; raw: unknown }> = [
        ...(options.definitions ?? []).map((raw, i) => ({ file: `definitions[${i}]`, raw })),
      ];
      for (const dir of dirs) sources.push(...(await readFlowDir(dir)));
      registered.length = 0;
      for (const { file, raw } of sources) {
        try {
          const reg = await made.registry.register(raw);
          registered.push(reg);
          if (reg.created)
            host.log('info', `flows: registered ${reg.name} version ${reg.version} from ${file}`);
        } catch (err) {
          if (err instanceof FlowDefinitionError)
            throw new FlowDefinitionError(err.code as never, `${file}: ${err.message}`, {
              ...(err.step === undefined ? {} : { step: err.step }),
              ...(err.field === undefined ? {} : { field: err.field }),
            });
          throw err;
        }
      }
      runtime = made;
      engine = host.engine;
    },
    mounts: {
      ingress: describeMount(
        (r) => ingressMount(() => engine ?? rt().host.engine, rt)(r),
        [
          {
            method: 'POST',
            path: '/{name}/run',
            summary: 'Runs the latest version of a declarative flow and waits for its result',
            description:
              'The JSON body is the flow input. Idempotency-Key (or ?id=) makes a repeated request answer the same run.',
          },
          { method: 'GET', path: '/runs/{runId}', summary: "A flow run's state" },
        ],
      ),
      admin: (r) => adminMount(rt)(r),
    },
    get runtime() {
      return rt();
    },
    registered,
    addDirectory(dir) {
      dirs.add(dir);
    },
  };
}
