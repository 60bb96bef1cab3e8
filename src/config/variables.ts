// `@set NAME = "VALUE"` and `${NAME}` expansion (undocumented in Lukko, but part of the parser).
import { ConfigError } from './errors.ts';
import { isSpace, isWordChar, type LineCursor } from './lexer.ts';

export type Variables = Map<string, string>;

/** True if the line is `@<name>` followed by whitespace or the end of the line. */
export function isDirective(line: string, name: string): boolean {
  const prefix = '@' + name;
  return line.startsWith(prefix) && (line.length === prefix.length || isSpace(line[prefix.length]));
}

/**
 * Expands `${name}`. Outside quotes the value becomes one single-quoted token so that it cannot
 * split into several; inside "..." it is spliced verbatim; inside '...' nothing is expanded.
 */
export function expandVariables(line: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  let quote: string | undefined;
  let i = 0;
  while (i < line.length) {
    const ch = line[i] ?? '';
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else if (quote === '"' && ch === '$' && line[i + 1] === '{') {
        const ref = readReference(line, i, vars);
        out += ref.value;
        i = ref.end;
        continue;
      }
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '$' && line[i + 1] === '{') {
      const ref = readReference(line, i, vars);
      out += `'${ref.value}'`;
      i = ref.end;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

function readReference(line: string, dollar: number, vars: ReadonlyMap<string, string>): { value: string; end: number } {
  const nameStart = dollar + 2;
  let i = nameStart;
  while (isWordChar(line[i])) i++;
  const token = line.slice(dollar, line[i] === '}' ? i + 1 : i);
  if (i === nameStart) throw new ConfigError("Variable name expected after '${'", { token });
  if (line[i] !== '}') throw new ConfigError("Missing '}' after variable name", { token });
  const name = line.slice(nameStart, i);
  const value = vars.get(name);
  if (value === undefined) throw new ConfigError(`No such variable: ${name}`, { token });
  return { value, end: i + 1 };
}

/** Parses the rest of an `@set` line; the cursor stands after `@set`. */
export function parseSet(c: LineCursor): { name: string; value: string } {
  c.skipSpace();
  const start = c.pos;
  while (isWordChar(c.peek())) c.pos++;
  if (c.pos === start) throw c.fail('Variable name expected');
  const name = c.text.slice(start, c.pos);
  c.lastToken = name;
  c.skipSpace();
  if (c.peek() !== '=') throw c.fail("'=' expected");
  c.pos++;
  c.lastToken = '=';
  c.skipSpace();
  const valueStart = c.pos;
  const value = c.nextEscapedQuoted();
  if (value === undefined) throw c.fail("Quoted value expected after '='", valueStart);
  c.expectEnd();
  return { name, value };
}
