/**
 * The recursive-descent parser of integration files: tokens in, a syntax tree out, every node
 * with its position. It knows the shape of the language, not what the fields mean (that is
 * `interpret.ts`), so it can parse any field written in the same style.
 *
 * ```text
 * document := member* | block | list             (a DSL file, or JSON)
 * member   := key ':' value                       retry: 3 times with exponential_backoff
 *           | key block                           circuit_breaker { ... }
 *           | ident ident block                   integration GitHubAPI { ... }, operation get_user { ... }
 * members are separated by new lines, ',' or ';'
 * value    := phrase (',' phrase)*                login: string, required   (a ',' followed by
 *                                                 `key:` starts the next member instead)
 * phrase   := term term*                          5 failures in 1m
 * term     := number | duration | string | ident | ident '.' ident ... (a reference)
 *           | ident '(' phrase (',' phrase)* ')' [block]   bearer(env(GITHUB_TOKEN))
 *           | ident block                         aws_signature_v4 { ... }
 *           | block | '[' phrase (',' phrase)* ']'
 * ```
 */
import { IntegrationDeclarationError } from '../../errors.js';
import { describe, type Pos, type Token } from './lexer.js';

interface Span {
  pos: Pos;
  end: Pos;
}

export type Node =
  | (Span & { kind: 'number'; value: number; text: string })
  | (Span & { kind: 'duration'; ms: number; text: string })
  | (Span & { kind: 'string'; value: string })
  | (Span & { kind: 'ident'; name: string })
  | (Span & { kind: 'ref'; path: string[] })
  | (Span & { kind: 'call'; name: string; args: Phrase[]; block?: BlockNode })
  | BlockNode
  | (Span & { kind: 'list'; items: Phrase[] });

export interface BlockNode extends Span {
  kind: 'block';
  fields: Field[];
}

/** Terms written one after another: `3 times with exponential_backoff`. */
export interface Phrase extends Span {
  terms: Node[];
}

/** A field's value: one or more phrases separated by commas (`integer, default(10)`). */
export interface Value extends Span {
  phrases: Phrase[];
}

export interface Field {
  key: string;
  keyPos: Pos;
  /** For `operation get_user { ... }`: the name between the keyword and the block. */
  label?: { name: string; pos: Pos };
  value: Value;
}

/** A parsed file: DSL members, or a single JSON value. */
export type Document = { kind: 'dsl'; fields: Field[]; end: Pos } | { kind: 'json'; value: Node };

/** Parses a token list. Throws an {@link IntegrationDeclarationError} at the first mistake. */
export function parseDocument(tokens: readonly Token[], file?: string): Document {
  const p = new Parser(tokens, file);
  return p.document();
}

class Parser {
  private i = 0;

  constructor(
    private readonly tokens: readonly Token[],
    private readonly file: string | undefined,
  ) {}

  document(): Document {
    this.skipNewlines();
    const t = this.peek();
    if (this.isPunct(t, '{') || this.isPunct(t, '[')) {
      const value = this.term();
      this.skipNewlines();
      if (this.peek().kind !== 'eof')
        this.fail(
          this.peek(),
          `expected the end of the file after the JSON value, found ${describe(this.peek())}`,
        );
      return { kind: 'json', value };
    }
    const fields = this.members(null);
    return { kind: 'dsl', fields, end: this.peek().pos };
  }

  /** Members up to `close` (a '}' token), or to the end of the file when `close` is null. */
  private members(open: Token | null): Field[] {
    const fields: Field[] = [];
    for (;;) {
      this.skipSeparators();
      const t = this.peek();
      if (t.kind === 'eof') {
        if (open !== null)
          this.fail(
            t,
            `the '{' at line ${open.pos.line}, column ${open.pos.column} is never closed with '}'`,
          );
        return fields;
      }
      if (this.isPunct(t, '}')) {
        if (open === null) this.fail(t, `this '}' closes nothing`);
        return fields;
      }
      fields.push(this.member());
      const after = this.peek();
      if (after.kind === 'newline' || this.isPunct(after, ',') || this.isPunct(after, ';'))
        continue;
      if (after.kind === 'eof' || this.isPunct(after, '}')) continue;
      const last = fields[fields.length - 1]!;
      this.fail(
        after,
        `expected a new line or ',' after the value of '${last.key}', found ${describe(after)}`,
      );
    }
  }

  private member(): Field {
    const k = this.next();
    if (k.kind !== 'ident' && k.kind !== 'string') {
      this.fail(k, `expected a field name, found ${describe(k)}`);
    }
    const key = String(k.value);
    const t = this.peek();
    if (this.isPunct(t, ':')) {
      this.i++;
      this.skipNewlines();
      return { key, keyPos: k.pos, value: this.value(key) };
    }
    if (this.isPunct(t, '{')) {
      const block = this.block();
      return { key, keyPos: k.pos, value: single(block) };
    }
    if (k.kind === 'ident' && t.kind === 'ident' && this.isPunct(this.peek(1), '{')) {
      this.i++;
      const block = this.block();
      return {
        key,
        keyPos: k.pos,
        label: { name: String(t.value), pos: t.pos },
        value: single(block),
      };
    }
    return this.fail(t, `expected ':' after '${key}', found ${describe(t)}`);
  }

  private value(key: string): Value {
    const phrases = [this.phrase(key)];
    while (this.isPunct(this.peek(), ',') && this.continuesValue()) {
      this.i++;
      this.skipNewlines();
      phrases.push(this.phrase(key));
    }
    return { phrases, pos: phrases[0]!.pos, end: phrases[phrases.length - 1]!.end };
  }

  /** After a ',': does the value go on (`, required`) or does the next member start (`, b: 2`)? */
  private continuesValue(): boolean {
    let j = 1;
    while (this.peek(j).kind === 'newline') j++;
    const a = this.peek(j);
    const b = this.peek(j + 1);
    if (a.kind === 'eof' || this.isPunct(a, '}') || this.isPunct(a, ',') || this.isPunct(a, ';'))
      return false;
    if ((a.kind === 'ident' || a.kind === 'string') && this.isPunct(b, ':')) return false;
    if (a.kind === 'ident' && b.kind === 'ident' && this.isPunct(this.peek(j + 2), '{'))
      return false;
    return true;
  }

  private phrase(key: string): Phrase {
    const terms: Node[] = [];
    for (;;) {
      const t = this.peek();
      const startsTerm =
        t.kind === 'ident' ||
        t.kind === 'number' ||
        t.kind === 'duration' ||
        t.kind === 'string' ||
        this.isPunct(t, '{') ||
        this.isPunct(t, '[');
      if (!startsTerm) break;
      if (
        terms.length > 0 &&
        (t.kind === 'ident' || t.kind === 'string') &&
        this.isPunct(this.peek(1), ':')
      ) {
        this.fail(
          t,
          `'${String(t.value)}' looks like the next field: put it on a new line or after a ','`,
        );
      }
      terms.push(this.term());
    }
    if (terms.length === 0) {
      const t = this.peek();
      this.fail(t, `expected a value for '${key}', found ${describe(t)}`);
    }
    return { terms, pos: terms[0]!.pos, end: terms[terms.length - 1]!.end };
  }

  private term(): Node {
    const t = this.next();
    switch (t.kind) {
      case 'number':
        return { kind: 'number', value: t.value as number, text: t.text, pos: t.pos, end: t.end };
      case 'duration':
        return { kind: 'duration', ms: t.value as number, text: t.text, pos: t.pos, end: t.end };
      case 'string':
        return { kind: 'string', value: t.value as string, pos: t.pos, end: t.end };
      case 'ident':
        return this.identTerm(t);
      case 'punct':
        if (t.value === '{') {
          this.i--;
          return this.block();
        }
        if (t.value === '[') return this.list(t);
        break;
      default:
        break;
    }
    return this.fail(t, `expected a value, found ${describe(t)}`);
  }

  private identTerm(t: Token): Node {
    const name = String(t.value);
    if (this.isPunct(this.peek(), '(')) {
      const open = this.next();
      const args = this.sequence(open, ')', `${name}(`);
      const call: Node = {
        kind: 'call',
        name,
        args,
        pos: t.pos,
        end: this.tokens[this.i - 1]!.end,
      };
      if (this.isPunct(this.peek(), '{')) {
        const block = this.block();
        return { ...call, block, end: block.end };
      }
      return call;
    }
    if (this.isPunct(this.peek(), '{')) {
      const block = this.block();
      return { kind: 'call', name, args: [], block, pos: t.pos, end: block.end };
    }
    if (this.isPunct(this.peek(), '.') && this.peek(1).kind === 'ident') {
      const path = [name];
      let end = t.end;
      while (this.isPunct(this.peek(), '.') && this.peek(1).kind === 'ident') {
        this.i++;
        const part = this.next();
        path.push(String(part.value));
        end = part.end;
      }
      return { kind: 'ref', path, pos: t.pos, end };
    }
    return { kind: 'ident', name, pos: t.pos, end: t.end };
  }

  private block(): BlockNode {
    const open = this.next();
    const fields = this.members(open);
    const close = this.next();
    return { kind: 'block', fields, pos: open.pos, end: close.end };
  }

  private list(open: Token): Node {
    const items = this.sequence(open, ']', '[');
    return { kind: 'list', items, pos: open.pos, end: this.tokens[this.i - 1]!.end };
  }

  /** Comma-separated phrases up to `close`; new lines do not matter inside. */
  private sequence(open: Token, close: ')' | ']', what: string): Phrase[] {
    const items: Phrase[] = [];
    for (;;) {
      this.skipNewlines();
      if (this.isPunct(this.peek(), close)) {
        this.i++;
        return items;
      }
      if (this.peek().kind === 'eof') {
        this.fail(
          this.peek(),
          `the '${open.text}' at line ${open.pos.line}, column ${open.pos.column} is never closed with '${close}'`,
        );
      }
      items.push(this.phrase(what));
      this.skipNewlines();
      const t = this.peek();
      if (this.isPunct(t, ',')) {
        this.i++;
        continue;
      }
      if (!this.isPunct(t, close)) {
        this.fail(
          t,
          `expected ',' or '${close}' in the ${close === ']' ? 'list' : 'arguments'} opened at line ${open.pos.line}, column ${open.pos.column}, found ${describe(t)}`,
        );
      }
    }
  }

  private skipNewlines(): void {
    while (this.peek().kind === 'newline') this.i++;
  }

  private skipSeparators(): void {
    for (;;) {
      const t = this.peek();
      if (t.kind === 'newline' || this.isPunct(t, ',') || this.isPunct(t, ';')) this.i++;
      else return;
    }
  }

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.i + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (this.i < this.tokens.length - 1) this.i++;
    return t;
  }

  private isPunct(t: Token, p: string): boolean {
    return t.kind === 'punct' && t.value === p;
  }

  private fail(t: Token, message: string): never {
    throw new IntegrationDeclarationError(
      this.file === undefined ? t.pos : { ...t.pos, file: this.file },
      message,
    );
  }
}

function single(node: Node): Value {
  const phrase: Phrase = { terms: [node], pos: node.pos, end: node.end };
  return { phrases: [phrase], pos: node.pos, end: node.end };
}
