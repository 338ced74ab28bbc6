import type { FuzzCase, Outcome } from './cases.js';

const MAX = 400;

/**
 * Ids the server handed out, so later requests can act on real invocations and awakeables:
 * a fuzzer that only guesses ids never gets past the 404.
 */
export class Known {
  readonly invocations: string[] = [];
  readonly awakeables: string[] = [];
  /** Outbound webhook endpoints the admin API created (`ep_...`). */
  readonly endpoints: string[] = [];
  /** `host:port` of the ingress (Twilio signs the full URL). */
  constructor(readonly ingressHost: string) {}

  /** Learns ids from an answer. */
  learn(c: FuzzCase, o: Outcome): void {
    if (o.body === undefined || o.status === undefined || o.status >= 300) return;
    for (const m of o.body.matchAll(/"(inv_[0-9a-z]{26})"/g)) add(this.invocations, m[1]!);
    for (const m of o.body.matchAll(/"(ep_[0-9a-f]{20})"/g)) add(this.endpoints, m[1]!);
    if (c.gen === 'waiter-awakeable' && o.body.startsWith('"')) {
      try {
        add(this.awakeables, JSON.parse(o.body) as string);
      } catch {
        // Not a JSON string: nothing to learn.
      }
    }
  }
}

function add(list: string[], item: string): void {
  if (list.includes(item)) return;
  list.push(item);
  if (list.length > MAX) list.splice(0, list.length - MAX);
}
