// Tokenizer for one logical config line. It mirrors the original's lexical classes: keywords,
// plain values (quoted without escapes) and paths (quoted, with a few escapes).
import { ConfigError } from './errors.ts';

/** The original treats every byte 0x01..0x20 as whitespace, not just space and tab. */
export function isSpace(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  const c = ch.charCodeAt(0);
  return c > 0 && c <= 0x20;
}

export function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && /^[A-Za-z0-9_]$/.test(ch);
}

function isValueChar(ch: string | undefined): boolean {
  return ch !== undefined && /^[A-Za-z0-9_.:-]$/.test(ch);
}

export function trimLine(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s[start])) start++;
  while (end > start && isSpace(s[end - 1])) end--;
  return s.slice(start, end);
}

const PATH_ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', '\\': '\\', "'": "'", '"': '"' };

export class LineCursor {
  readonly text: string;
  pos: number;
  /** Source text of the last token read; errors found after reading it point at it. */
  lastToken: string | undefined;

  constructor(text: string, pos = 0) {
    this.text = text;
    this.pos = pos;
    this.lastToken = undefined;
  }

  skipSpace(): void {
    while (isSpace(this.text[this.pos])) this.pos++;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.text.length;
  }

  peek(): string | undefined {
    return this.text[this.pos];
  }

  rest(): string {
    return this.text.slice(this.pos);
  }

  /** The whitespace-delimited chunk starting at `from`, or the last token if the line is used up. */
  chunkAt(from: number): string | undefined {
    let end = from;
    while (end < this.text.length && !isSpace(this.text[end])) end++;
    return end > from ? this.text.slice(from, end) : this.lastToken;
  }

  /** An error pointing at the text under the cursor. */
  fail(reason: string, from = this.pos): ConfigError {
    return new ConfigError(reason, { token: this.chunkAt(from) });
  }

  /** An error pointing at the token just read (for semantic checks of a value). */
  failLast(reason: string): ConfigError {
    return new ConfigError(reason, { token: this.lastToken });
  }

  expectEnd(): void {
    if (this.atEnd()) return;
    const rest = this.rest();
    throw new ConfigError(`Unexpected tokens at end of line: ${rest}`, { token: rest });
  }

  /** `[A-Za-z0-9_]+`, which must be followed by whitespace or the end of the line. */
  nextWord(): string {
    this.skipSpace();
    const start = this.pos;
    while (isWordChar(this.text[this.pos])) this.pos++;
    if (this.pos === start || (this.pos < this.text.length && !isSpace(this.text[this.pos]))) {
      this.pos = start;
      throw this.fail('Word expected');
    }
    return this.take(start);
  }

  /** A plain value: `[A-Za-z0-9_.:-]+` unquoted, or anything between two equal quotes (no escapes). */
  nextValue(): string {
    this.skipSpace();
    const start = this.pos;
    const q = this.text[start];
    if (q === undefined) throw this.fail('Value expected');
    if (q === '"' || q === "'") return this.quotedValue(start, q);
    while (isValueChar(this.text[this.pos])) this.pos++;
    if (this.pos === start || (this.pos < this.text.length && !isSpace(this.text[this.pos]))) {
      this.pos = start;
      throw this.fail('Value expected');
    }
    return this.take(start);
  }

  private quotedValue(start: number, q: string): string {
    const close = this.text.indexOf(q, start + 1);
    if (close < 0) throw this.fail('Value expected', start);
    this.pos = close + 1;
    const value = this.text.slice(start + 1, close);
    this.take(start);
    // Whitespace after a closing quote is optional, as in the original (`"a""b"` is two tokens).
    this.skipSpace();
    if (value === '') throw this.failLast('Empty value not allowed');
    return value;
  }

  /** A quoted string with the escapes `\n \r \\ \' \"`, or undefined if there is none here. */
  nextEscapedQuoted(): string | undefined {
    this.skipSpace();
    const start = this.pos;
    const q = this.text[start];
    if (q !== '"' && q !== "'") return undefined;
    let out = '';
    for (let i = start + 1; i < this.text.length; i++) {
      const ch = this.text[i];
      if (ch === q) {
        this.pos = i + 1;
        this.take(start);
        return out;
      }
      if (ch === '\\') {
        const esc = PATH_ESCAPES[this.text[i + 1] ?? ''];
        if (esc === undefined) return undefined;
        out += esc;
        i++;
      } else {
        out += ch;
      }
    }
    return undefined;
  }

  /** Paths must be quoted; an empty one is refused because it could only name the directory. */
  nextPath(): string {
    this.skipSpace();
    const start = this.pos;
    const path = this.nextEscapedQuoted();
    if (path === undefined) {
      this.pos = start;
      throw this.fail('Quoted path expected');
    }
    if (path === '') throw this.failLast('Empty value not allowed');
    return path;
  }

  /** The `{` that opens a block must be the last token on the keyword's line. */
  expectOpenBrace(): void {
    this.skipSpace();
    if (this.text[this.pos] !== '{') throw this.fail("'{' expected");
    this.pos++;
    this.take(this.pos - 1);
    if (this.atEnd()) return;
    const rest = this.rest();
    throw new ConfigError(`Unexpected tokens after '{': ${rest}`, { token: rest });
  }

  private take(start: number): string {
    const raw = this.text.slice(start, this.pos);
    this.lastToken = raw;
    return raw;
  }
}
