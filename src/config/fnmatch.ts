// fnmatch(3) with flags 0, as used for `@include` globs: `*`, `?`, `[...]` (with `!`/`^` negation
// and ranges) and backslash escapes. With flags 0 a leading dot is an ordinary character.

/** Only `*` and `?` make an include a glob; `[` alone does not (matching the original). */
export function hasWildcard(name: string): boolean {
  return name.includes('*') || name.includes('?');
}

export function fnmatch(pattern: string, name: string): boolean {
  return compile(pattern).test(name);
}

function compile(pattern: string): RegExp {
  let re = '';
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i] ?? '';
    if (ch === '*') {
      re += '[\\s\\S]*';
    } else if (ch === '?') {
      re += '[\\s\\S]';
    } else if (ch === '[') {
      const bracket = compileBracket(pattern, i);
      if (bracket !== undefined) {
        re += bracket.re;
        i = bracket.end;
        continue;
      }
      re += literal('[');
    } else if (ch === '\\' && i + 1 < pattern.length) {
      i++;
      re += literal(pattern[i] ?? '');
    } else {
      re += literal(ch);
    }
    i++;
  }
  return new RegExp(`^${re}$`, 'u');
}

function literal(ch: string): string {
  return `\\u{${(ch.codePointAt(0) ?? 0).toString(16)}}`;
}

/** Returns undefined for an unterminated bracket, which fnmatch then treats as a literal `[`. */
function compileBracket(pattern: string, open: number): { re: string; end: number } | undefined {
  let i = open + 1;
  let negate = false;
  if (pattern[i] === '!' || pattern[i] === '^') {
    negate = true;
    i++;
  }
  let items = '';
  let first = true;
  while (i < pattern.length) {
    let ch = pattern[i] ?? '';
    if (ch === ']' && !first) return { re: `[${negate ? '^' : ''}${items}]`, end: i + 1 };
    first = false;
    if (ch === '\\' && i + 1 < pattern.length) ch = pattern[++i] ?? '';
    const dash = pattern[i + 1] === '-' && pattern[i + 2] !== undefined && pattern[i + 2] !== ']';
    if (dash) {
      let hi = pattern[i + 2] ?? '';
      let skip = 3;
      if (hi === '\\' && pattern[i + 3] !== undefined) {
        hi = pattern[i + 3] ?? '';
        skip = 4;
      }
      // A reversed range matches nothing in fnmatch; a JS character class would reject it.
      if ((ch.codePointAt(0) ?? 0) <= (hi.codePointAt(0) ?? 0)) items += `${literal(ch)}-${literal(hi)}`;
      i += skip;
    } else {
      items += literal(ch);
      i++;
    }
  }
  return undefined;
}
