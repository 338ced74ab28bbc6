/**
 * Reading values out of the syntax tree of an integrations file, with errors that carry the
 * position of the value at fault: the primitives (durations, numbers, strings, secrets, JSON
 * values), blocks and their fields, and phrases read term by term ({@link Cursor}). It also
 * remembers where each TypeScript field came from, so errors found later by `integration()` can
 * be reported at the right line and column.
 */
import { parseDuration, type Duration } from '../../../core/duration.js';
import { IntegrationConfigError, IntegrationDeclarationError } from '../../errors.js';
import type { Configurable, EnvRef } from '../secrets.js';
import { tokenize, type Pos } from './lexer.js';
import {
  parseDocument,
  type BlockNode,
  type Field,
  type Node,
  type Phrase,
  type Value,
} from './syntax.js';

/** Which syntax the document was written in: durations as bare numbers are JSON only. */
export type Mode = 'dsl' | 'json';

/** Header names whose values are credentials: a literal value in a file is refused. */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-auth-token',
  'x-access-token',
]);

/**
 * Reads values for one document. Every method that can fail throws an
 * `IntegrationDeclarationError` at the position of the value, prefixed with the integration and
 * the field (`integration GitHubAPI, circuit_breaker: ...`).
 */
export class Reader {
  /** The integration being read, for error messages. */
  private current = '';
  /** Where each TypeScript field path came from, for reporting `integration()`'s errors. */
  private origins = new Map<string, { pos: Pos; label: string }>();

  constructor(
    readonly file: string | undefined,
    readonly mode: Mode,
  ) {}

  /** Starts reading integration `name`. */
  begin(name: string): void {
    this.current = name;
    this.origins = new Map();
  }

  headers(v: Value, tsPath: string, label: string): Record<string, Configurable> {
    const node = this.one(v, label);
    if (node.kind !== 'block')
      this.fail(
        node.pos,
        `${this.ctx(label)}write headers: { "X-GitHub-Api-Version": "2022-11-28" }`,
      );
    const out: Record<string, Configurable> = {};
    for (const f of node.fields) {
      const l = `${label}.${f.key}`;
      const n = this.one(f.value, l);
      out[f.key] = CREDENTIAL_HEADERS.has(f.key.toLowerCase())
        ? this.secret(n, l)
        : this.configurable(n, l);
      this.origin(`${tsPath}.${f.key}`, n.pos, l);
    }
    this.origin(tsPath, node.pos, label);
    return out;
  }

  stringMap(block: BlockNode, label: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of block.fields)
      out[f.key] = this.string(this.one(f.value, `${label}.${f.key}`), `${label}.${f.key}`);
    return out;
  }

  /** A credential: env(NAME) only. A literal is refused, and never repeated in the message. */
  secret(node: Node, label: string): EnvRef {
    const ref = this.envRef(node, label);
    if (ref !== undefined) return ref;
    if (node.kind === 'string') {
      return this.fail(
        node.pos,
        `${this.ctx(label)}a literal secret in the file is refused: write env(NAME) and set the environment variable NAME where Keel runs`,
      );
    }
    return this.fail(
      node.pos,
      `${this.ctx(label)}expected env(NAME), the environment variable that holds this secret`,
    );
  }

  /** A non-secret value that may also come from the environment. */
  configurable(node: Node, label: string): Configurable {
    return this.envRef(node, label) ?? this.string(node, label);
  }

  envRef(node: Node, label: string): EnvRef | undefined {
    if (node.kind === 'call' && node.name === 'env') {
      if (node.args.length !== 1)
        this.fail(node.pos, `${this.ctx(label)}write env(NAME) with one variable name`);
      const arg = this.one(node.args[0]!, label);
      const name = arg.kind === 'ident' ? arg.name : arg.kind === 'string' ? arg.value : undefined;
      if (name === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        this.fail(
          arg.pos,
          `${this.ctx(label)}env() takes an environment variable name: letters, digits and _`,
        );
      }
      return { env: name };
    }
    if (node.kind === 'block' && node.fields.length === 1 && node.fields[0]!.key === 'env') {
      const arg = this.one(node.fields[0]!.value, label);
      if (arg.kind !== 'string' && arg.kind !== 'ident')
        this.fail(arg.pos, `${this.ctx(label)}write { "env": "NAME" }`);
      const name = arg.kind === 'string' ? arg.value : arg.name;
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        this.fail(
          arg.pos,
          `${this.ctx(label)}"env" takes an environment variable name: letters, digits and _`,
        );
      }
      return { env: name };
    }
    return undefined;
  }

  duration(node: Node, label: string): Duration {
    if (node.kind === 'duration') return node.ms;
    if (node.kind === 'number' && this.mode === 'json') return node.value;
    if (node.kind === 'string') {
      try {
        return parseDurationText(node.value);
      } catch {
        return this.fail(
          node.pos,
          `${this.ctx(label)}expected a duration like 30s, got ${JSON.stringify(node.value)}`,
        );
      }
    }
    if (node.kind === 'number') {
      return this.fail(
        node.pos,
        `${this.ctx(label)}a duration needs a unit: write ${node.text}ms, ${node.text}s or ${node.text}m`,
      );
    }
    return this.fail(node.pos, `${this.ctx(label)}expected a duration like 30s, 5m or 1h`);
  }

  number(node: Node, label: string): number {
    if (node.kind !== 'number') this.fail(node.pos, `${this.ctx(label)}expected a number`);
    return node.value;
  }

  bool(node: Node, label: string): boolean {
    if (node.kind === 'ident' && (node.name === 'true' || node.name === 'false'))
      return node.name === 'true';
    return this.fail(node.pos, `${this.ctx(label)}expected true or false`);
  }

  string(node: Node, label: string): string {
    if (node.kind !== 'string')
      this.fail(node.pos, `${this.ctx(label)}expected a string in double quotes`);
    return node.value;
  }

  /** An identifier, or (for JSON) a string holding one. */
  word(node: Node, label: string): string {
    const w = this.wordOf(node);
    if (w === undefined)
      this.fail(node.pos, `${this.ctx(label)}expected a word such as rest or graphql`);
    return w;
  }

  wordOf(node: Node): string | undefined {
    return node.kind === 'ident' ? node.name : node.kind === 'string' ? node.value : undefined;
  }

  /** Any JSON value: blocks are objects (keys as written), lists arrays, bare words strings. */
  json(node: Node, label: string): unknown {
    switch (node.kind) {
      case 'number':
        return node.value;
      case 'string':
        return node.value;
      case 'duration':
        return node.text;
      case 'ident':
        return node.name === 'true'
          ? true
          : node.name === 'false'
            ? false
            : node.name === 'null'
              ? null
              : node.name;
      case 'ref':
        return node.path.join('.');
      case 'list':
        return node.items.map((p) => this.json(this.one(p, label), label));
      case 'block': {
        const out: Record<string, unknown> = {};
        for (const f of node.fields)
          out[f.key] = this.json(this.one(f.value, `${label}.${f.key}`), `${label}.${f.key}`);
        return out;
      }
      case 'call':
        return this.fail(
          node.pos,
          `${this.ctx(label)}expected a plain value (text, number, true/false, { ... } or [ ... ]), found ${node.name}(...)`,
        );
    }
  }

  /** The one term of a value, or an error pointing at the first extra one. */
  one(v: Value | Phrase, label: string): Node {
    const phrases = 'phrases' in v ? v.phrases : [v];
    if (phrases.length > 1)
      this.fail(phrases[1]!.pos, `${this.ctx(label)}expected a single value, found more after ','`);
    const terms = phrases[0]!.terms;
    if (terms.length > 1)
      this.fail(
        terms[1]!.pos,
        `${this.ctx(label)}expected a single value, found more: '${describeNode(terms[1]!)}'`,
      );
    return terms[0]!;
  }

  block(v: Value, label: string): BlockNode {
    const node = this.one(v, label);
    if (node.kind !== 'block') this.fail(node.pos, `${this.ctx(label)}expected { ... }`);
    return node;
  }

  /**
   * The fields of a block by normalized key (`baseUrl` and `base-url` are `base_url`). Unknown
   * keys are refused with a suggestion; a key given twice is refused.
   */
  fields(
    block: BlockNode,
    allowed: string[],
    label: string,
    repeatable: string[] = [],
  ): Map<string, Field> {
    const out = new Map<string, Field>();
    for (const f of block.fields) {
      const key = normalizeKey(f.key);
      if (!allowed.includes(key)) {
        const guess = closest(key, allowed);
        this.fail(
          f.keyPos,
          `${this.ctx(label)}unknown field '${f.key}'${guess === undefined ? ` (accepted: ${allowed.join(', ')})` : `; did you mean '${guess}'?`}`,
        );
      }
      if (repeatable.includes(key)) continue;
      const first = out.get(key);
      if (first !== undefined) {
        this.fail(
          f.keyPos,
          `${this.ctx(label)}'${f.key}' is given twice (first at line ${first.keyPos.line}, column ${first.keyPos.column})`,
        );
      }
      out.set(key, f);
    }
    return out;
  }

  /**
   * In JSON, a field written in the DSL's phrase form can be given as a string
   * (`"retry": "3 times with exponential_backoff"`): the string is parsed as a value.
   */
  reparse(v: Value, label: string): Value {
    const only =
      v.phrases.length === 1 && v.phrases[0]!.terms.length === 1
        ? v.phrases[0]!.terms[0]!
        : undefined;
    if (only?.kind !== 'string') return v;
    const at = only.pos;
    try {
      const doc = parseDocument(tokenize(`x: ${only.value}`, this.file), this.file);
      if (doc.kind !== 'dsl' || doc.fields.length !== 1) throw new Error('not a single value');
      return shift(doc.fields[0]!.value, at);
    } catch (err) {
      const why =
        err instanceof IntegrationDeclarationError
          ? err.message.replace(/^.*?line \d+, column \d+: /, '')
          : 'not a value';
      return this.fail(
        at,
        `${this.ctx(label)}could not read the text as a ${label} setting: ${why}`,
      );
    }
  }

  origin(path: string, pos: Pos, label: string): void {
    this.origins.set(path, { pos, label });
  }

  /** Restates an `integration()` error at the position of the field it is about. */
  relocate(err: IntegrationConfigError): IntegrationDeclarationError {
    let path = err.path;
    for (;;) {
      const o = this.origins.get(path);
      if (o !== undefined) {
        const subject = o.label === '' ? err.path : o.label;
        return new IntegrationDeclarationError(
          this.at(o.pos),
          `integration ${this.current}${subject === '' ? '' : `, ${subject}`}: ${err.detail.replace(/^: /, '')}`,
          err,
        );
      }
      const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
      path = cut === -1 ? '' : path.slice(0, cut);
    }
  }

  ctx(label: string): string {
    if (this.current === '') return label === '' ? '' : `${label}: `;
    return label === ''
      ? `integration ${this.current}: `
      : `integration ${this.current}, ${label}: `;
  }

  at(pos: Pos): Pos & { file?: string } {
    return this.file === undefined ? pos : { ...pos, file: this.file };
  }

  fail(pos: Pos, message: string): never {
    throw new IntegrationDeclarationError(this.at(pos), message);
  }
}

/** Reads the terms of one phrase in order (`5 failures in 1m`), with errors at the right place. */
export class Cursor {
  private i = 0;
  lastPos: Pos;
  previousWord = '';

  constructor(
    private readonly it: Reader,
    private readonly phrase: Phrase,
    private readonly label: string,
  ) {
    this.lastPos = phrase.pos;
  }

  private take(what: string): Node {
    const t = this.phrase.terms[this.i];
    if (t === undefined)
      this.it.fail(this.phrase.end, `${this.it.ctx(this.label)}expected ${what}`);
    this.i++;
    this.lastPos = t.pos;
    return t;
  }

  node(what: string): Node {
    return this.take(what);
  }

  integer(what: string): number {
    const t = this.take(what);
    if (t.kind !== 'number' || !Number.isInteger(t.value))
      this.it.fail(t.pos, `${this.it.ctx(this.label)}expected ${what}`);
    return t.value;
  }

  number(what: string): number {
    const t = this.take(what);
    if (t.kind !== 'number') this.it.fail(t.pos, `${this.it.ctx(this.label)}expected ${what}`);
    return t.value;
  }

  duration(after: string): Duration {
    const t = this.take(`a duration like 30s after ${after}`);
    if (t.kind === 'duration') return t.ms;
    if (t.kind === 'string') {
      try {
        return parseDurationText(t.value);
      } catch {
        // reported below
      }
    }
    return this.it.fail(
      t.pos,
      `${this.it.ctx(this.label)}expected a duration like 30s after ${after}, found '${describeNode(t)}'`,
    );
  }

  word(what: string): string {
    const t = this.take(what);
    const w = this.it.wordOf(t);
    if (w === undefined || t.kind === 'string')
      this.it.fail(t.pos, `${this.it.ctx(this.label)}expected ${what}`);
    this.previousWord = w;
    return w;
  }

  peekIdent(): string | undefined {
    const t = this.phrase.terms[this.i];
    return t?.kind === 'ident' ? t.name : undefined;
  }

  /** Takes the next term if it is one of `words`. */
  optional(...words: string[]): boolean {
    const w = this.peekIdent();
    if (w === undefined || !words.includes(w)) return false;
    this.take('');
    this.previousWord = w;
    return true;
  }

  /** The next term must be one of `words`. */
  expect(...words: string[]): void {
    const t = this.phrase.terms[this.i];
    const w = t?.kind === 'ident' ? t.name : undefined;
    if (w === undefined || !words.includes(w)) {
      const after = this.previousWord === '' ? '' : ` after '${this.previousWord}'`;
      const found = t === undefined ? '' : `, found '${describeNode(t)}'`;
      this.it.fail(
        t?.pos ?? this.phrase.end,
        `${this.it.ctx(this.label)}expected '${words[0]}'${after}${found}`,
      );
    }
    this.take('');
    this.previousWord = w;
  }

  /** No terms may be left. */
  end(what: string): void {
    const t = this.phrase.terms[this.i];
    if (t !== undefined)
      this.it.fail(
        t.pos,
        `${this.it.ctx(this.label)}unexpected '${describeNode(t)}' after ${what}`,
      );
  }
}

export function parseDurationText(text: string): number {
  const t = text.trim();
  if (!/^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/.test(t) && !/^P/i.test(t))
    throw new RangeError('not a duration');
  // The core parser does the arithmetic and the ISO-8601 form.
  return parseDuration(t);
}

export function describeNode(n: Node): string {
  switch (n.kind) {
    case 'number':
    case 'duration':
      return n.text;
    case 'string':
      return 'a string';
    case 'ident':
      return n.name;
    case 'ref':
      return n.path.join('.');
    case 'call':
      return `${n.name}(...)`;
    case 'block':
      return '{ ... }';
    case 'list':
      return '[ ... ]';
  }
}

/** `baseUrl`, `base-url` and `base_url` are the same field. */
export function normalizeKey(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/-/g, '_')
    .toLowerCase();
}

export function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The allowed key closest to a mistyped one, if any is close. */
function closest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const a of allowed) {
    const d = distance(key, a);
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 2)) ? best : undefined;
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** Moves the positions of a value parsed from inside a string to the string's position. */
function shift<T>(value: T, at: Pos): T {
  const move = (p: Pos): Pos => ({
    line: at.line,
    column: at.column + 1 + Math.max(0, p.column - 4),
  });
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (typeof x !== 'object' || x === null) return x;
    const o = x as Record<string, unknown>;
    if (typeof o.line === 'number' && typeof o.column === 'number' && Object.keys(o).length === 2) {
      return move(o as unknown as Pos);
    }
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, walk(v)]));
  };
  return walk(value) as T;
}
