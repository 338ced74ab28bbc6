/**
 * BuildService of the CI/CD exercise: one object per pipeline run, holding the build it made.
 * Compiling takes a while (a durable sleep stands in for the compiler), which is what makes
 * the parallel build and unit tests visible.
 */
import { object, shared, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** How long a build takes. */
export const BUILD_TIME = '1s';

/** A finished build. */
export interface Build {
  artifact: string;
  startedAt: string;
  finishedAt: string;
}

/** Builds per pipeline id: compile (once per pipeline), read. */
export const PipelineBuild = object({
  name: 'PipelineBuild',
  handlers: {
    /** Compiles the commit into an artifact; compiling the same pipeline again returns it. */
    compile: async (
      ctx: ObjectContext,
      req: { repo: string; commit: string; simulate?: Simulation },
    ): Promise<Build> => {
      const done = await ctx.get<Build>('build');
      if (done) return done;
      const startedAt = new Date(await ctx.now()).toISOString();
      await ctx.sleep(BUILD_TIME);
      await simulated(ctx, req.simulate, {
        code: 'compile_error',
        message: `${req.repo}@${req.commit} does not compile: src/index.ts(3,7) missing ";"`,
        status: 422,
      });
      const build: Build = {
        artifact: `${req.repo}:${req.commit.slice(0, 7)}`,
        startedAt,
        finishedAt: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('build', build);
      return build;
    },

    /** The build, or null. */
    get: shared(async (ctx) => (await ctx.get<Build>('build')) ?? null),
  },
});
