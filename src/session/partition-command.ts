// Pure: the commands an account without shell access may still run when its translation
// response has a partition for them (spec/ssh-behaviour.md 3.3): `rsync --server …` and
// `git-receive-pack '<path>'` / `git-upload-pack '<path>'`. The command line is split here,
// never handed to a shell.

export type PartitionService = 'rsync' | 'git-receive-pack' | 'git-upload-pack';

export interface PartitionCommand {
  service: PartitionService;
  /** argv[1..] for the program. */
  args: string[];
}

/** Splits on spaces; a backslash makes the next character literal (rsync's own quoting). */
export function splitBackslashEscaped(s: string): string[] | undefined {
  const out: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      if (++i >= s.length) return undefined;
      word = (word ?? '') + s[i];
    } else if (c === ' ') {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) out.push(word);
  return out;
}

/** One shell word made of single-quoted parts, backslash escapes and plain characters. */
export function unquoteShellWord(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return undefined;
      out += s.slice(i + 1, end);
      i = end;
    } else if (c === '\\') {
      if (++i >= s.length) return undefined;
      out += s[i];
    } else if (/[\s"`$;&|<>()*?[\]{}~#!]/.test(c)) {
      return undefined; // anything a shell would treat specially: not a plain path
    } else {
      out += c;
    }
  }
  return out;
}

export function parsePartitionCommand(command: string): PartitionCommand | undefined {
  if (command.startsWith('rsync --server ')) {
    const argv = splitBackslashEscaped(command);
    return argv && argv.length > 2 ? { service: 'rsync', args: argv.slice(1) } : undefined;
  }
  for (const service of ['git-receive-pack', 'git-upload-pack'] as const) {
    if (command.startsWith(`${service} `)) {
      const path = unquoteShellWord(command.slice(service.length + 1));
      return path !== undefined && path.length > 0 ? { service, args: [path] } : undefined;
    }
  }
  return undefined;
}
