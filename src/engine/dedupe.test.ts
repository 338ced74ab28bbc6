import { describe, expect, it } from 'vitest';
import { dedupeKey, idempotencyKeyOf } from './dedupe.js';

describe('dedupeKey', () => {
  it('is injective over keys, handlers and idempotency keys containing "/" and "%"', () => {
    const parts = ['', 'a', 'add', '/', '%', '%2F', 'a/add', 'add/x', 'x', 'a%2Fadd', '//', 'b/'];
    const seen = new Map<string, string>();
    for (const key of parts)
      for (const handler of parts.filter((p) => p !== ''))
        for (const idem of parts.filter((p) => p !== '')) {
          const made = dedupeKey('object', 'Counter', handler, key, idem)!;
          const what = JSON.stringify([key, handler, idem]);
          expect(seen.get(made) ?? what, made).toBe(what);
          seen.set(made, what);
          expect(idempotencyKeyOf(made)).toBe(idem);
        }
  });

  it('keeps the format older versions stored for keys and handlers without "/" or "%"', () => {
    expect(dedupeKey('object', 'Counter', 'add', 'k-1', 'req/42')).toBe(
      'idem:Counter/k-1/add/req/42',
    );
    expect(dedupeKey('service', 'Greeter', 'greet', '', 'x')).toBe('idem:Greeter//greet/x');
    expect(dedupeKey('workflow', 'Signup', 'run', 'a/b', undefined)).toBe('wf:Signup/a/b');
  });

  it("keys a workflow's run by the workflow key alone, whatever idempotency key it carries", () => {
    expect(dedupeKey('workflow', 'Signup', 'run', 'k', 'A')).toBe('wf:Signup/k');
    expect(dedupeKey('workflow', 'Signup', 'stage', 'k', 'A')).toBe('idem:Signup/k/stage/A');
    expect(dedupeKey('workflow', 'Signup', 'stage', 'k', undefined)).toBeUndefined();
    expect(idempotencyKeyOf('wf:Signup/k')).toBeUndefined();
  });
});
