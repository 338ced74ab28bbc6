/** The admin API: list, inspect, cancel, kill, purge and resume invocations over HTTP. */
export { serveAdmin, checkAdminOptions } from './server.js';
export type { AdminOptions, AdminServer } from './server.js';
export { AdminTokenRequiredError, UnauthorizedError } from './auth.js';
export type { AdminRole } from './auth.js';
export { ForbiddenError } from '../http/mount.js';
