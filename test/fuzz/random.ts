import { Prng } from '../../src/core/prng.js';

/**
 * The fuzzer's only source of randomness: one seeded stream, so a run is replayed from its seed
 * (up to the ids the server hands out, which the generators pick from by index).
 */
export class Rand {
  private readonly prng: Prng;

  constructor(readonly seed: string) {
    this.prng = new Prng(seed);
  }

  /** A float in [0, 1). */
  next(): number {
    return this.prng.next();
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.prng.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.prng.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.prng.next() * items.length)]!;
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let x = this.prng.next() * total;
    for (const [w, v] of items) {
      x -= w;
      if (x < 0) return v;
    }
    return items[items.length - 1]![1];
  }

  /** `n` characters from `alphabet`. */
  chars(n: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.prng.next() * alphabet.length)]!;
    return s;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.prng.nextU32() & 0xff;
    return b;
  }
}

/** A fresh seed for a run that was not given one: printed, so the run can be repeated. */
export function freshSeed(): string {
  return Math.floor(Math.random() * 2 ** 48)
    .toString(36)
    .padStart(10, '0');
}
