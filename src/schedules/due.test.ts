import { describe, expect, it } from 'vitest';
import { DueQueue, type Queued } from './due.js';

interface Item extends Queued {
  name: string;
}

function queue(kept: Set<Item>): DueQueue<Item> {
  return new DueQueue<Item>((v) => kept.has(v));
}

const names = (items: Item[]) => items.map((i) => i.name);

describe('DueQueue', () => {
  it('takes what is due, earliest first, and leaves the rest', () => {
    const items = [30, 10, 50, 20, 40, 10].map((t, i): Item => ({ name: `${t}-${i}`, fireAt: t }));
    const q = queue(new Set(items));
    for (const i of items) q.update(i);
    expect(q.peek()).toBe(10);
    expect(names(q.takeDue(30))).toEqual(['10-1', '10-5', '20-3', '30-0']);
    expect(q.peek()).toBe(40);
    expect(q.takeDue(30)).toEqual([]);
    expect(names(q.takeDue(100))).toEqual(['40-4', '50-2']);
    expect(q.peek()).toBeUndefined();
  });

  it('follows changes of time: the earlier item goes stale, none is taken twice', () => {
    const a: Item = { name: 'a', fireAt: 10 };
    const b: Item = { name: 'b', fireAt: 20 };
    const q = queue(new Set([a, b]));
    q.update(a);
    q.update(b);
    a.fireAt = 30; // re-planned later
    q.update(a);
    a.fireAt = 10; // and back: queued again at 10, once
    q.update(a);
    expect(names(q.takeDue(15))).toEqual(['a']);
    expect(names(q.takeDue(100))).toEqual(['b']);
  });

  it('drops what is never due, and what the caller no longer keeps', () => {
    const a: Item = { name: 'a', fireAt: 10 };
    const b: Item = { name: 'b', fireAt: 20 };
    const kept = new Set([a, b]);
    const q = queue(kept);
    q.update(a);
    q.update(b);
    a.fireAt = undefined; // paused
    q.update(a);
    kept.delete(b); // deleted
    expect(q.peek()).toBeUndefined();
    expect(q.takeDue(100)).toEqual([]);
    a.fireAt = 50; // resumed
    q.update(a);
    expect(names(q.takeDue(100))).toEqual(['a']);
  });

  it('queues again a value whose time changed without an update, at its new time', () => {
    const a: Item = { name: 'a', fireAt: 10 };
    const q = queue(new Set([a]));
    q.update(a);
    a.fireAt = 40;
    expect(q.peek()).toBe(40);
    expect(q.takeDue(39)).toEqual([]);
    expect(names(q.takeDue(40))).toEqual(['a']);
  });

  it('is rebuilt from the values alone', () => {
    const items = Array.from({ length: 100 }, (_, i): Item => ({ name: `i${i}`, fireAt: i }));
    const q = queue(new Set(items));
    for (const i of items) q.update(i);
    for (const i of items) {
      i.fireAt = 1000 - i.fireAt!;
      q.update(i);
    }
    expect(q.size).toBe(200);
    q.rebuild(items);
    expect(q.size).toBe(100);
    const taken = q.takeDue(Number.POSITIVE_INFINITY);
    expect(taken.map((i) => i.fireAt)).toEqual(items.map((_, k) => 901 + k));
  });
});
