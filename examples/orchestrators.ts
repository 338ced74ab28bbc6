import type { Definition } from '../src/index.js';

/** Seed 001: every orchestration exercise and its downstream services. */
export const orchestrators: Definition[] = [];
