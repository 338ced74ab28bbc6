import { describe, expect, it } from 'vitest';
import { normalize } from './replay.js';

/** What normalize promised before its fast path: the JSON round trip. */
function roundTrip(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v));
}

/** Equal, with the same key order everywhere, and sharing no object with the input. */
function expectSameAsJson(input: unknown): void {
  const out = normalize(input);
  const expected = roundTrip(input);
  expect(out).toStrictEqual(expected);
  expect(JSON.stringify(out)).toBe(JSON.stringify(expected));
  const objects = new Set<unknown>();
  const collect = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || objects.has(v)) return;
    objects.add(v);
    for (const x of Object.values(v)) collect(x);
  };
  collect(input);
  const shared = (v: unknown): boolean =>
    v !== null && typeof v === 'object' && (objects.has(v) || Object.values(v).some(shared));
  expect(shared(out)).toBe(false);
}

/** `[undefined, 1, <hole>, 3]`. */
function holey(): unknown[] {
  const a: unknown[] = [undefined, 1];
  a[3] = 3;
  return a;
}

describe('normalize', () => {
  it('copies plain data exactly as the JSON round trip does', () => {
    const cases: unknown[] = [
      {},
      [],
      { a: 1, b: 'two', c: true, d: null, e: [1, 'x', false, null] },
      { nested: { deeper: { deepest: [{ x: 1 }, [2, [3, [4]]]] } } },
      { b: 1, 2: 'x', a: 3, 1: 'y' }, // integer-like keys first, as JSON orders them
      { u: undefined, keep: 1 }, // undefined properties are dropped
      holey(), // undefined and holes become null
      { neg: -0, arr: [-0], nan: NaN, inf: Infinity, minf: -Infinity, big: 1e308, tiny: 5e-324 },
      { s: 'quotes " and \\ backslashes \n newlines \u2028 and 😀 and a lone \ud800 surrogate' },
      Object.assign(Object.create(null) as object, { nullProto: true }),
      { body: '{"type":"order.shipped","data":{"id":1}}', c: 1_700_000_000_000 },
    ];
    for (const c of cases) expectSameAsJson(c);
  });

  it('matches the JSON round trip on random plain data', () => {
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const leaf = (): unknown => {
      const r = rnd();
      if (r < 0.2) return Math.floor(rnd() * 1e6) - 5e5;
      if (r < 0.3) return rnd() * 1e3;
      if (r < 0.5) return `s${Math.floor(rnd() * 1e4)}"\\\n`;
      if (r < 0.6) return rnd() < 0.5;
      if (r < 0.7) return null;
      if (r < 0.75) return undefined;
      if (r < 0.8) return -0;
      return NaN;
    };
    const gen = (depth: number): unknown => {
      if (depth > 4 || rnd() < 0.3) return leaf();
      if (rnd() < 0.5) return Array.from({ length: Math.floor(rnd() * 5) }, () => gen(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(rnd() * 6); i++)
        o[rnd() < 0.2 ? String(Math.floor(rnd() * 10)) : `k${Math.floor(rnd() * 20)}`] = gen(
          depth + 1,
        );
      return o;
    };
    for (let i = 0; i < 2000; i++) expectSameAsJson({ v: gen(0) });
  });

  it('takes the JSON round trip for anything that is not plain data', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const withToJson = { a: 1, toJSON: () => ({ replaced: true }) };
    const cases: unknown[] = [
      { at: new Date(0) },
      new Date(1000),
      new Point(1, 2),
      { p: new Point(3, 4) },
      withToJson,
      { inner: withToJson },
      { f: () => 1, keep: 2 }, // functions are dropped from objects
      [() => 1, Symbol('s')], // and become null in arrays
      { m: new Map([[1, 2]]), set: new Set([1]) },
      { buf: Buffer.from('hi') },
      JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as unknown,
    ];
    for (const c of cases) expect(normalize(c)).toStrictEqual(roundTrip(c));
    expect(normalize(JSON.parse('{"__proto__": 1}'))).toHaveProperty('__proto__', 1);
  });

  it('fails as the JSON round trip does', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => normalize(cyclic)).toThrow(/cannot be stored as JSON/);
    expect(() => normalize({ n: 10n })).toThrow(/cannot be stored as JSON/);
    const throwing = {
      get boom(): never {
        throw new Error('getter failed');
      },
    };
    expect(() => normalize(throwing)).toThrow(/cannot be stored as JSON: getter failed/);
    expect(() => normalize(() => 1)).toThrow(/has no JSON form/);
    // Deep but acyclic data beyond the fast path's depth still works.
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100; i++) deep = { d: deep };
    expect(normalize(deep)).toStrictEqual(roundTrip(deep));
  });
});
