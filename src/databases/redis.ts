/**
 * Redis through one `ioredis` connection (Redis serves one connection's commands in order, so a
 * pool buys little). ioredis reconnects on its own after the server drops the connection
 * (`CLIENT KILL`, a restart) and resends the commands that were waiting; a command that still
 * fails is a connection error, which the step retries.
 */
import { Redis } from 'ioredis';
import {
  describeError,
  SOCKET_CODES,
  type Classified,
  type DatabaseAdapter,
  type DatabaseClient,
} from './adapter.js';
import type { RedisTransaction } from './types.js';

/** Reply prefixes that mean "not now" (or "not until the credentials are fixed") rather than "no". */
const BUSY_REPLIES = new Set([
  'NOAUTH',
  'WRONGPASS',
  'LOADING',
  'BUSY',
  'TRYAGAIN',
  'MASTERDOWN',
  'READONLY',
  'CLUSTERDOWN',
]);

export const redisAdapter: DatabaseAdapter = {
  type: 'redis',
  open(db, hooks): DatabaseClient {
    const redis = new Redis(db.url, {
      lazyConnect: true,
      // Fail a command after two reconnect attempts: the journaled step's retry policy (which
      // survives restarts and backs off) takes over from there.
      maxRetriesPerRequest: 2,
      retryStrategy: (times) => Math.min(100 * 2 ** times, 2_000),
      connectTimeout: 5_000,
      ...(db.statementTimeoutMs === undefined ? {} : { commandTimeout: db.statementTimeoutMs }),
    });
    redis.on('error', (err) => hooks.connectionLost(err));
    return {
      command: (name, args) => redis.call(name, ...(args as Array<string | number | Buffer>)),
      async transaction(fn) {
        const multi = redis.multi();
        const tx: RedisTransaction = {
          command: (name, ...args) => void multi.call(name, ...args),
        };
        await (fn as (tx: RedisTransaction) => Promise<unknown>)(tx);
        const replies = await multi.exec();
        if (replies === null)
          throw Object.assign(new Error('EXEC aborted (a WATCHed key changed)'), {
            name: 'ReplyError',
          });
        const failed = replies.find(([err]) => err !== null);
        if (failed) throw failed[0]!;
        return replies.map(([, value]) => value);
      },
      async ping() {
        await redis.ping();
      },
      pool: () => ({
        total: redis.status === 'ready' ? 1 : 0,
        idle: 0,
        waiting:
          (redis as unknown as { offlineQueue?: { length: number } }).offlineQueue?.length ?? 0,
      }),
      classify: classifyRedis,
      async close() {
        redis.disconnect();
        await Promise.resolve();
      },
    };
  },
};

export function classifyRedis(err: unknown): Classified | undefined {
  const { message, code } = describeError(err);
  const name = (err as { name?: unknown } | undefined)?.name;
  if (name === 'ReplyError') {
    const prefix = /^([A-Z][A-Z_-]+)\b/.exec(message)?.[1];
    const base = { message, ...(prefix === undefined ? {} : { driverCode: prefix }) };
    if (prefix !== undefined && BUSY_REPLIES.has(prefix))
      return { retryable: true, code: 'database_unavailable', ...base };
    if (
      prefix === 'EXECABORT' ||
      (prefix === 'ERR' && /unknown command|wrong number of arguments|syntax/i.test(message))
    )
      return { retryable: false, code: 'database_syntax_error', ...base };
    return { retryable: false, code: 'database_query_failed', ...base };
  }
  if (/Command timed out/i.test(message))
    return { retryable: true, code: 'database_timeout', message };
  if (
    name === 'MaxRetriesPerRequestError' ||
    (code !== undefined && SOCKET_CODES.has(code)) ||
    /Connection is closed|Stream isn't writeable|connect ETIMEDOUT/i.test(message)
  )
    return {
      retryable: true,
      code: 'database_unavailable',
      message,
      ...(code === undefined ? {} : { driverCode: code }),
    };
  return undefined;
}
