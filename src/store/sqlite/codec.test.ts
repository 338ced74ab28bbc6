import { describe, expect, it } from 'vitest';
import { completeEncoded, decodeEntry, encodeEntry } from './codec.js';

describe('completeEncoded', () => {
  const complete = (entry: Parameters<typeof encodeEntry>[0], value: unknown, error?: unknown) =>
    decodeEntry(
      completeEncoded(
        encodeEntry(entry, 'inv', 0),
        value === undefined ? null : JSON.stringify(value),
        error === undefined ? null : JSON.stringify(error),
      ),
    );

  it('adds the value or the error to an entry without data', () => {
    expect(complete({ kind: 'promise', name: 'p', done: false }, { a: [1, null] })).toEqual({
      kind: 'promise',
      name: 'p',
      done: true,
      value: { a: [1, null] },
    });
    expect(complete({ kind: 'promise', name: 'p', done: false }, null)).toEqual({
      kind: 'promise',
      name: 'p',
      done: true,
      value: null,
    });
    const err = { code: 'x', message: 'y' };
    const rejected = complete({ kind: 'promise', name: 'p', done: false }, undefined, err);
    expect(rejected).toEqual({ kind: 'promise', name: 'p', done: true, error: err });
    expect('value' in rejected).toBe(false);
  });

  it('leaves the data alone for an undefined value', () => {
    const e = complete({ kind: 'promise', name: 'p', done: false, wakeAt: 3 }, undefined);
    expect(e).toEqual({ kind: 'promise', name: 'p', done: true, wakeAt: 3 });
    expect('value' in e).toBe(false);
  });

  it('keeps the other fields of the entry', () => {
    expect(complete({ kind: 'call', name: 'S/h', done: false, calleeId: 'c1' }, 'v')).toEqual({
      kind: 'call',
      name: 'S/h',
      done: true,
      calleeId: 'c1',
      value: 'v',
    });
  });

  it('handles data that encoded to an empty object', () => {
    // A field whose value has no JSON form (a function) is dropped by JSON.stringify.
    const entry = { kind: 'run', name: 's', done: false, calleeId: (() => 1) as unknown as string };
    expect(encodeEntry(entry as never, 'inv', 0).data).toBe('{}');
    expect(complete(entry as never, 5)).toEqual({ kind: 'run', name: 's', done: true, value: 5 });
  });
});
