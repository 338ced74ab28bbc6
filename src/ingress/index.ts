/** The HTTP ingress: invoke, send and attach over JSON. */
export { serve } from './server.js';
export type { IngressOptions, IngressServer } from './server.js';
