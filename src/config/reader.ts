// Physical-line processing: trimming, block close, comments, `@include`/`@include_optional`,
// `${}` expansion and `@set`, in the original's order. Everything else goes to a LineSink.
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, errnoCode, errnoText, locate, type Location } from './errors.ts';
import { fnmatch, hasWildcard } from './fnmatch.ts';
import { LineCursor, trimLine } from './lexer.ts';
import { expandVariables, isDirective, parseSet, type Variables } from './variables.ts';

/** The parser's only access to the file system, injected so the core stays testable. */
export interface FileAccess {
  readFile(path: string): string;
  listDir(dir: string): string[];
}

export interface LineContext extends Location {
  /** Directory of the file containing the line; relative paths resolve against it. */
  dir: string;
}

export interface LineSink {
  inBlock(): boolean;
  /** Called on a `}` line while a block is open; the cursor stands after the `}`. */
  closeBlock(c: LineCursor, ctx: LineContext): void;
  line(c: LineCursor, ctx: LineContext): void;
}

// The original has no recursion guard and would overflow its stack on a self-include; lukko
// reports a config error instead.
export const MAX_INCLUDE_DEPTH = 32;

interface Frame {
  file: string;
  line: number;
  dir: string;
}

export class ConfigReader {
  private readonly files: FileAccess;
  private readonly sink: LineSink;
  private readonly vars: Variables = new Map();
  private readonly frames: Frame[] = [];

  constructor(files: FileAccess, sink: LineSink) {
    this.files = files;
    this.sink = sink;
  }

  /** Processes a file's text; `path` names it in errors and anchors its relative paths. */
  feed(path: string, text: string): void {
    const frame: Frame = { file: path, line: 0, dir: resolve(dirname(path)) };
    this.frames.push(frame);
    try {
      const lines = text.split('\n');
      for (let i = 0; i < lines.length; i++) {
        frame.line = i + 1;
        this.feedLine(lines[i] ?? '', this.context(frame));
      }
    } finally {
      this.frames.pop();
    }
  }

  private context(frame: Frame): LineContext {
    return {
      file: frame.file,
      line: frame.line,
      dir: frame.dir,
      chain: this.frames.map((f) => `${f.file}:${f.line}`),
    };
  }

  private feedLine(raw: string, ctx: LineContext): void {
    try {
      this.processLine(trimLine(raw), ctx);
    } catch (err) {
      throw err instanceof ConfigError ? locate(err, ctx) : err;
    }
  }

  private processLine(line: string, ctx: LineContext): void {
    // `}` is recognised before comments and variables, so `} # x` is an error like the original.
    if (this.sink.inBlock() && line.startsWith('}')) {
      const c = new LineCursor(line, 1);
      c.lastToken = '}';
      c.expectEnd();
      withToken(c, () => this.sink.closeBlock(c, ctx));
      return;
    }
    if (line === '' || line.startsWith('#')) return;
    // Includes come before variable expansion, so `${x}` in an include path stays literal.
    if (isDirective(line, 'include')) return this.include(line, 'include', ctx);
    if (isDirective(line, 'include_optional')) return this.include(line, 'include_optional', ctx);
    const expanded = line.includes('${') ? expandVariables(line, this.vars) : line;
    if (isDirective(expanded, 'set')) {
      const c = new LineCursor(expanded, '@set'.length);
      c.lastToken = '@set';
      const { name, value } = parseSet(c);
      this.vars.set(name, value);
      return;
    }
    const c = new LineCursor(expanded);
    withToken(c, () => this.sink.line(c, ctx));
  }

  private include(line: string, keyword: 'include' | 'include_optional', ctx: LineContext): void {
    const c = new LineCursor(line, keyword.length + 1);
    c.lastToken = '@' + keyword;
    const raw = c.nextPath();
    const token = c.lastToken;
    c.expectEnd();
    if (this.frames.length > MAX_INCLUDE_DEPTH) throw new ConfigError('Too many nested includes', { token });
    const path = resolve(ctx.dir, raw);
    if (keyword === 'include_optional') this.includeOptional(path, token);
    else if (hasWildcard(basename(path))) this.includeGlob(path, token);
    else this.includeFile(path, token);
  }

  private includeFile(path: string, token: string | undefined): void {
    let text: string;
    try {
      text = this.files.readFile(path);
    } catch (err) {
      throw new ConfigError(`Failed to open "${path}": ${errnoText(err)}`, { token });
    }
    this.feed(path, text);
  }

  /** Only the last component is a pattern; zero matches are fine, a missing directory is not. */
  private includeGlob(pattern: string, token: string | undefined): void {
    const dir = dirname(pattern);
    let names: string[];
    try {
      names = this.files.listDir(dir);
    } catch (err) {
      throw new ConfigError(`Failed to open directory "${dir}": ${errnoText(err)}`, { token });
    }
    const glob = basename(pattern);
    const matches = names.filter((n) => n !== '.' && n !== '..' && fnmatch(glob, n)).sort(compareBytes);
    for (const name of matches) this.includeFile(join(dir, name), token);
  }

  /** No globbing here: the path is literal, and only "does not exist" is silently skipped. */
  private includeOptional(path: string, token: string | undefined): void {
    let text: string;
    try {
      text = this.files.readFile(path);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw new ConfigError(`Failed to open ${path}: ${errnoText(err)}`, { token });
    }
    this.feed(path, text);
  }
}

/** Errors raised by keyword handlers without a token point at the last token read. */
function withToken(c: LineCursor, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError && !err.located && err.token === undefined) err.token = c.lastToken;
    throw err;
  }
}

// strcmp order like the original's sorted glob results, not locale order.
function compareBytes(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}
