/** The admin API's shapes, as the dashboard reads them (see docs and notes/admin-contract). */

export interface ErrorInfo {
  code?: string;
  message: string;
  [k: string]: unknown;
}

export interface InvocationInfo {
  id: string;
  target: string;
  service: string;
  handler: string;
  key?: string;
  status: string;
  attempt: number;
  createdAt: string;
  modifiedAt: string;
  completedAt?: string;
  nextAttemptAt?: string;
  idempotencyKey?: string;
  error?: ErrorInfo;
  cancel?: 'requested' | 'delivered';
  outcome?: string;
  [k: string]: unknown;
}

export interface JournalEntry {
  index: number;
  kind: string;
  name: string;
  done: boolean;
  value?: unknown;
  error?: ErrorInfo;
  wakeAt?: number;
  calleeId?: string;
  // Richer timelines (if the server gives them): shown when present.
  startedAt?: string | number;
  completedAt?: string | number;
  durationMs?: number;
  attempts?: number;
  completedBy?: string;
  [k: string]: unknown;
}

export interface BulkJob {
  id: string;
  action: string;
  status: 'running' | 'done';
  matched: number;
  done: number;
  failed: number;
  errors: Array<{ id: string; code: string; message: string }>;
}

export interface HandlerInfo {
  name: string;
  kind: string;
  input?: JsonSchema;
  output?: JsonSchema;
}

export interface ServiceInfo {
  name: string;
  kind: 'service' | 'object' | 'workflow';
  handlers: HandlerInfo[];
}

export type JsonSchema = { [k: string]: unknown };

export const STATUSES = [
  'queued',
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
  'failed',
] as const;
