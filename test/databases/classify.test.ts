import { describe, expect, it } from 'vitest';
import { classifyMysql } from '../../src/databases/mysql.js';
import { classifyPostgres } from '../../src/databases/postgres.js';
import { classifyRedis } from '../../src/databases/redis.js';

/** Driver errors as the drivers shape them (code, sqlState, name), for the cases hard to provoke live. */
const err = (message: string, fields: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(message), fields);

describe('sorting driver errors: retryable connection trouble or terminal refusal', () => {
  it.each([
    ['57P01', 'database_unavailable'],
    ['08006', 'database_unavailable'],
    ['53300', 'database_unavailable'],
    ['28P01', 'database_unavailable'],
    ['40001', 'database_conflict'],
    ['40P01', 'database_conflict'],
    ['57014', 'database_timeout'],
    ['42P01', 'database_syntax_error'],
    ['23503', 'database_constraint_violation'],
    ['22P02', 'database_query_failed'],
  ])('PostgreSQL SQLSTATE %s is %s', (code, expected) => {
    expect(classifyPostgres(err('x', { code }))?.code).toBe(expected);
  });

  it('PostgreSQL: socket errors and pg connection messages are retryable; a plain error is not ours', () => {
    expect(classifyPostgres(err('read ECONNRESET', { code: 'ECONNRESET' }))).toMatchObject({
      retryable: true,
    });
    expect(classifyPostgres(err('Connection terminated unexpectedly'))).toMatchObject({
      retryable: true,
      code: 'database_unavailable',
    });
    expect(classifyPostgres(err('timeout exceeded when trying to connect'))).toMatchObject({
      code: 'database_timeout',
    });
    expect(classifyPostgres(new TypeError('x is not a function'))).toBeUndefined();
  });

  it.each([
    [{ code: 'PROTOCOL_CONNECTION_LOST' }, 'database_unavailable'],
    [{ code: 'ER_CONNECTION_KILLED', sqlState: '70100' }, 'database_unavailable'],
    [{ code: 'ER_ACCESS_DENIED_ERROR', sqlState: '28000' }, 'database_unavailable'],
    [{ code: 'ER_LOCK_DEADLOCK', sqlState: '40001' }, 'database_conflict'],
    [{ code: 'PROTOCOL_SEQUENCE_TIMEOUT' }, 'database_timeout'],
    [{ code: 'ER_NO_SUCH_TABLE', sqlState: '42S02' }, 'database_syntax_error'],
    [{ code: 'ER_NO_REFERENCED_ROW_2', sqlState: '23000' }, 'database_constraint_violation'],
    [{ code: 'ER_TRUNCATED_WRONG_VALUE', sqlState: '22007' }, 'database_query_failed'],
  ])('MySQL %j is %s', (fields, expected) => {
    expect(classifyMysql(err('x', fields))?.code).toBe(expected);
  });

  it.each([
    [
      err('WRONGTYPE Operation against a key holding the wrong kind of value', {
        name: 'ReplyError',
      }),
      'database_query_failed',
      false,
    ],
    [err("ERR unknown command 'NOPE'", { name: 'ReplyError' }), 'database_syntax_error', false],
    [
      err('LOADING Redis is loading the dataset in memory', { name: 'ReplyError' }),
      'database_unavailable',
      true,
    ],
    [err('NOAUTH Authentication required.', { name: 'ReplyError' }), 'database_unavailable', true],
    [
      err('Reached the max retries per request limit', { name: 'MaxRetriesPerRequestError' }),
      'database_unavailable',
      true,
    ],
    [err('Command timed out'), 'database_timeout', true],
    [err('Connection is closed.'), 'database_unavailable', true],
  ])('Redis %s is %s', (e, expected, retryable) => {
    expect(classifyRedis(e)).toMatchObject({ code: expected, retryable });
  });
});
