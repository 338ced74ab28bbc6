import type { Definition } from '../src/index.js';

/** Seed 002: every saga exercise and its downstream services. */
export const sagas: Definition[] = [];
