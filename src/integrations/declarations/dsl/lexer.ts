/**
 * The tokenizer of integration files. One pass, every token with its line and column (1-based),
 * so every later error can say where it is. JSON is a subset of what it accepts.
 *
 * Tokens: identifiers (`rest`, `exponential_backoff`, `X-GitHub-Api-Version`), numbers (`5000`,
 * `0.25`, `25%`), durations (`30s`, `1h30m`, `500ms`), strings (`"..."`, `'...'`, and `"""..."""`
 * spanning lines), punctuation `{ } ( ) [ ] : , ; .`, and line breaks, which separate fields.
 * Comments: `// ...`, `# ...`, `/* ... *\/`.
 */
import { IntegrationDeclarationError } from '../../errors.js';

/** A place in the source, 1-based. */
export interface Pos {
  line: number;
  column: number;
}

export type TokenKind = 'ident' | 'number' | 'duration' | 'string' | 'punct' | 'newline' | 'eof';

export interface Token {
  kind: TokenKind;
  /** The source text of the token. */
  text: string;
  /** Strings: the decoded text; numbers: the value; durations: milliseconds; punctuation: itself. */
  value: string | number;
  pos: Pos;
  /** Just after the token. */
  end: Pos;
}

const PUNCT = new Set(['{', '}', '(', ')', '[', ']', ':', ',', ';', '.']);
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WORD_TAIL = /[A-Za-z0-9_]*/y;
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;
const IDENT = /[A-Za-z_][A-Za-z0-9_-]*/y;

/**
 * Splits `source` into tokens. Throws an {@link IntegrationDeclarationError} at the first
 * character that cannot start a token, or at an unterminated string or comment.
 */
export function tokenize(source: string, file?: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  let column = 1;
  const here = (): Pos => ({ line, column });
  const fail = (at: Pos, message: string): never => {
    throw new IntegrationDeclarationError(file === undefined ? at : { ...at, file }, message);
  };
  const advance = (n: number): void => {
    for (let k = 0; k < n; k++) {
      if (source[i] === '\n') {
        line++;
        column = 1;
      } else {
        column++;
      }
      i++;
    }
  };
  const push = (kind: TokenKind, start: number, pos: Pos, value: string | number): void => {
    tokens.push({ kind, text: source.slice(start, i), value, pos, end: here() });
  };

  while (i < source.length) {
    const c = source[i]!;
    const start = i;
    const pos = here();
    if (c === '\n') {
      advance(1);
      push('newline', start, pos, '\n');
    } else if (c === ' ' || c === '\t' || c === '\r' || c === '\uFEFF') {
      advance(1);
    } else if (c === '#' || (c === '/' && source[i + 1] === '/')) {
      while (i < source.length && source[i] !== '\n') advance(1);
    } else if (c === '/' && source[i + 1] === '*') {
      const close = source.indexOf('*/', i + 2);
      if (close === -1) fail(pos, 'this /* comment is never closed with */');
      advance(close + 2 - i);
    } else if (c === '"' && source.startsWith('"""', i)) {
      const close = source.indexOf('"""', i + 3);
      if (close === -1) fail(pos, 'this """ text block is never closed with """');
      const raw = source.slice(i + 3, close);
      advance(close + 3 - i);
      push('string', start, pos, dedent(raw));
    } else if (c === '"' || c === "'") {
      advance(1);
      let value = '';
      for (;;) {
        if (i >= source.length || source[i] === '\n') {
          fail(
            pos,
            `this string is never closed: add the closing ${c} on the same line (use """ for text over several lines)`,
          );
        }
        const d = source[i]!;
        if (d === c) {
          advance(1);
          break;
        }
        if (d === '\\') {
          const e = source[i + 1];
          const escPos = here();
          if (e === 'u') {
            const hex = source.slice(i + 2, i + 6);
            if (!/^[0-9A-Fa-f]{4}$/.test(hex)) fail(escPos, '\\u must be followed by 4 hex digits');
            value += String.fromCharCode(parseInt(hex, 16));
            advance(6);
            continue;
          }
          const simple: Record<string, string> = {
            n: '\n',
            t: '\t',
            r: '\r',
            b: '\b',
            f: '\f',
            '/': '/',
            '\\': '\\',
            '"': '"',
            "'": "'",
          };
          if (e === undefined || simple[e] === undefined) {
            fail(escPos, `unknown escape \\${e ?? ''}: use \\n, \\t, \\", \\\\ or \\uXXXX`);
          }
          value += simple[e!]!;
          advance(2);
          continue;
        }
        value += d;
        advance(1);
      }
      push('string', start, pos, value);
    } else if ((c >= '0' && c <= '9') || (c === '-' && /[0-9]/.test(source[i + 1] ?? ''))) {
      NUMBER.lastIndex = i;
      const num = NUMBER.exec(source)![0];
      WORD_TAIL.lastIndex = i + num.length;
      const tail = WORD_TAIL.exec(source)![0];
      if (tail !== '') {
        const word = num + tail;
        if (!DURATION.test(word)) {
          fail(
            pos,
            `"${word}" is neither a number nor a duration (durations look like 500ms, 30s, 5m, 1h, 7d or 1h30m)`,
          );
        }
        let ms = 0;
        for (const m of word.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
        advance(word.length);
        push('duration', start, pos, Math.round(ms));
      } else if (source[i + num.length] === '%') {
        advance(num.length + 1);
        push('number', start, pos, Number(num) / 100);
      } else {
        advance(num.length);
        push('number', start, pos, Number(num));
      }
    } else if (/[A-Za-z_]/.test(c)) {
      IDENT.lastIndex = i;
      const word = IDENT.exec(source)![0];
      advance(word.length);
      push('ident', start, pos, word);
    } else if (PUNCT.has(c)) {
      advance(1);
      push('punct', start, pos, c);
    } else {
      fail(pos, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  tokens.push({ kind: 'eof', text: '', value: '', pos: here(), end: here() });
  return tokens;
}

/** Describes a token for an error message: `'}'`, `"abc"`, `a new line`, `the end of the file`. */
export function describe(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'the end of the file';
    case 'newline':
      return 'a new line';
    case 'string':
      return t.text.startsWith('"""') ? 'a """ text block' : 'a string';
    default:
      return `'${t.text}'`;
  }
}

/** Removes the indentation common to all lines, and a first and last line that are blank. */
function dedent(text: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines.length > 1 && lines[0]!.trim() === '') lines.shift();
  if (lines.length > 1 && lines[lines.length - 1]!.trim() === '') lines.pop();
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0].length);
  const cut = indents.length === 0 ? 0 : Math.min(...indents);
  return lines.map((l) => l.slice(cut)).join('\n');
}
