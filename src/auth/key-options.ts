// The option list at the start of an authorized_keys line, with the semantics of OpenSSH's
// sshd(8) AUTHORIZED_KEYS FILE FORMAT for the subset lukko enforces. Anything outside that
// subset, and any malformed value, makes the whole line unusable: an option we cannot honour
// is a restriction we would silently drop, so we refuse the key instead (fail closed).

import { validateFromPatterns } from './address-match.ts';
import { parsePermitListen, parsePermitOpen, permitRuleToString } from './permit.ts';
import type { PermitKind, PermitParse, PermitRule } from './permit.ts';

// Options that come in an allow/deny pair (`pty` / `no-pty`); spelled as sshd(8) does.
export type FlagName = 'pty' | 'port-forwarding' | 'agent-forwarding' | 'X11-forwarding' | 'user-rc';

export const FLAG_NAMES: readonly FlagName[] = [
  'pty',
  'port-forwarding',
  'agent-forwarding',
  'X11-forwarding',
  'user-rc',
];

// One option as written, in order of appearance. `text` is a normalised rendering for logs.
export type KeyOption =
  | { readonly kind: 'flag'; readonly text: string; readonly flag: FlagName; readonly enabled: boolean }
  | { readonly kind: 'restrict'; readonly text: string }
  | { readonly kind: 'home-read-only'; readonly text: string }
  | { readonly kind: 'command'; readonly text: string; readonly command: string }
  | { readonly kind: 'from'; readonly text: string; readonly patterns: string }
  | { readonly kind: 'permitopen'; readonly text: string; readonly rule: PermitRule }
  | { readonly kind: 'permitlisten'; readonly text: string; readonly rule: PermitRule }
  | { readonly kind: 'expiry-time'; readonly text: string; readonly expiresAt: number };

// The list plus its net effect (later options override earlier ones).
export interface KeyOptions {
  readonly list: readonly KeyOption[];
  readonly command?: string;
  readonly from?: string;
  readonly pty: boolean;
  readonly portForwarding: boolean;
  readonly agentForwarding: boolean;
  readonly x11Forwarding: boolean;
  readonly userRc: boolean;
  readonly homeReadOnly: boolean;
  readonly permitOpen: readonly PermitRule[]; // [] = no permitopen given
  readonly permitListen: readonly PermitRule[];
  readonly expiresAt?: number; // ms since epoch; the earliest expiry-time given
}

export type KeyOptionsParse =
  | { ok: true; options: KeyOptions; rest: string }
  | { ok: false; reason: string };

const FLAG_BY_LOWER: ReadonlyMap<string, FlagName> = new Map(FLAG_NAMES.map((f) => [f.toLowerCase(), f]));

function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

function quote(value: string): string {
  return `"${value.replaceAll('"', '\\"')}"`;
}

export function emptyKeyOptions(): KeyOptions {
  return resolveKeyOptions([]);
}

// Folds an option list into its effect, in order, the way sshd does: `restrict` switches off
// every optional facility at its position and later `pty` etc. switch single ones back on.
export function resolveKeyOptions(list: readonly KeyOption[]): KeyOptions {
  const flags: Record<FlagName, boolean> = {
    pty: true,
    'port-forwarding': true,
    'agent-forwarding': true,
    'X11-forwarding': true,
    'user-rc': true,
  };
  let command: string | undefined;
  let from: string | undefined;
  let homeReadOnly = false;
  let expiresAt: number | undefined;
  const permitOpen: PermitRule[] = [];
  const permitListen: PermitRule[] = [];
  for (const o of list) {
    switch (o.kind) {
      case 'flag':
        flags[o.flag] = o.enabled;
        break;
      case 'restrict':
        for (const f of FLAG_NAMES) flags[f] = false;
        break;
      case 'home-read-only':
        homeReadOnly = true;
        break;
      case 'command':
        command = o.command;
        break;
      case 'from':
        from = o.patterns;
        break;
      case 'permitopen':
        permitOpen.push(o.rule);
        break;
      case 'permitlisten':
        permitListen.push(o.rule);
        break;
      case 'expiry-time':
        if (expiresAt === undefined || o.expiresAt < expiresAt) expiresAt = o.expiresAt;
        break;
    }
  }
  const out: KeyOptions = {
    list,
    pty: flags.pty,
    portForwarding: flags['port-forwarding'],
    agentForwarding: flags['agent-forwarding'],
    x11Forwarding: flags['X11-forwarding'],
    userRc: flags['user-rc'],
    homeReadOnly,
    permitOpen,
    permitListen,
    ...(command !== undefined ? { command } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
  return out;
}

function daysInMonth(year: number, month: number): number {
  // Day 0 of the next month is the last day of this one; UTC avoids DST surprises.
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

// expiry-time="YYYYMMDD[HHMM[SS]][Z]": local time of this process unless suffixed with `Z`
// (OpenSSH also accepts a `UTC` suffix and either case; so do we). Returns ms since the
// epoch, or null when malformed — including impossible dates such as 20250230, which a C
// mktime would quietly roll over into March.
export function parseExpiryTime(value: string): number | null {
  let s = value;
  let utc = false;
  if (s.length > 1 && /[Zz]$/.test(s)) {
    utc = true;
    s = s.slice(0, -1);
  } else if (s.length > 3 && /utc$/i.test(s)) {
    utc = true;
    s = s.slice(0, -3);
  }
  if (!/^[0-9]+$/.test(s) || (s.length !== 8 && s.length !== 12 && s.length !== 14)) return null;
  const num = (from: number, len: number): number => (s.length >= from + len ? Number(s.slice(from, from + len)) : 0);
  const year = num(0, 4);
  const month = num(4, 2);
  const day = num(6, 2);
  const hour = num(8, 2);
  const minute = num(10, 2);
  const second = num(12, 2);
  // Before 1970 would be a negative time, which sshd rejects as well.
  if (year < 1970 || month < 1 || month > 12) return null;
  if (day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  if (utc) return Date.UTC(year, month - 1, day, hour, minute, second);
  return new Date(year, month - 1, day, hour, minute, second).getTime();
}

interface RawOption {
  readonly name: string; // as written
  readonly value: string | undefined; // undefined: no `=`
  readonly quoted: boolean;
}

type Step = { ok: true; option: KeyOption } | { ok: false; reason: string };

function needsQuotedValue(o: RawOption, canonical: string): string | null {
  if (o.value === undefined) return `option "${canonical}" requires a value`;
  if (!o.quoted) return `option "${canonical}" requires a double-quoted value`;
  return null;
}

function interpret(o: RawOption, seen: Set<string>): Step {
  const lower = o.name.toLowerCase();

  if (lower === 'restrict') {
    if (o.value !== undefined) return { ok: false, reason: `option "restrict" does not take a value` };
    return { ok: true, option: { kind: 'restrict', text: 'restrict' } };
  }
  if (lower === 'home-read-only') {
    // The original lukko documented home-read-only with an arbitrary value; keep accepting
    // that (quoted or not) so existing files stay usable.
    return { ok: true, option: { kind: 'home-read-only', text: 'home-read-only' } };
  }

  const negated = lower.startsWith('no-');
  const flag = FLAG_BY_LOWER.get(negated ? lower.slice(3) : lower);
  if (flag !== undefined) {
    const text = negated ? `no-${flag}` : flag;
    if (o.value !== undefined) return { ok: false, reason: `option "${text}" does not take a value` };
    return { ok: true, option: { kind: 'flag', text, flag, enabled: !negated } };
  }

  switch (lower) {
    case 'command': {
      const bad = needsQuotedValue(o, 'command');
      if (bad !== null) return { ok: false, reason: bad };
      const command = o.value ?? '';
      if (command === '') return { ok: false, reason: `option "command" has an empty value` };
      // Two forced commands on one line: which one would run is a guess; sshd refuses too.
      if (seen.has('command')) return { ok: false, reason: `option "command" given more than once` };
      seen.add('command');
      return { ok: true, option: { kind: 'command', text: `command=${quote(command)}`, command } };
    }
    case 'from': {
      const bad = needsQuotedValue(o, 'from');
      if (bad !== null) return { ok: false, reason: bad };
      const patterns = o.value ?? '';
      const invalid = validateFromPatterns(patterns);
      if (invalid !== null) return { ok: false, reason: `option "from": ${invalid}` };
      if (seen.has('from')) return { ok: false, reason: `option "from" given more than once` };
      seen.add('from');
      return { ok: true, option: { kind: 'from', text: `from=${quote(patterns)}`, patterns } };
    }
    case 'permitopen':
    case 'permitlisten': {
      const kind: PermitKind = lower;
      const bad = needsQuotedValue(o, kind);
      if (bad !== null) return { ok: false, reason: bad };
      const parsed: PermitParse = kind === 'permitopen' ? parsePermitOpen(o.value ?? '') : parsePermitListen(o.value ?? '');
      if (!parsed.ok) return { ok: false, reason: `option ${parsed.reason}` };
      const text = permitRuleToString(kind, parsed.rule);
      return { ok: true, option: { kind, text, rule: parsed.rule } };
    }
    case 'expiry-time': {
      const bad = needsQuotedValue(o, 'expiry-time');
      if (bad !== null) return { ok: false, reason: bad };
      const expiresAt = parseExpiryTime(o.value ?? '');
      if (expiresAt === null) return { ok: false, reason: `option "expiry-time": invalid time "${o.value ?? ''}"` };
      return { ok: true, option: { kind: 'expiry-time', text: `expiry-time=${quote(o.value ?? '')}`, expiresAt } };
    }
  }
  // Includes OpenSSH options lukko does not implement (environment, tunnel, principals,
  // cert-authority, no-touch-required, verify-required): honouring them partially would be
  // worse than refusing the key.
  return { ok: false, reason: `unsupported option "${o.name}"` };
}

// Parses the option list at the start of `text` (which must not start with whitespace) up to
// the first unquoted space or tab. `rest` is what follows, leading blanks removed.
//
// Quoting as in OpenSSH: a value is `name="..."`, and inside the quotes only `\"` is an
// escape (it stands for `"`); every other backslash is kept literally.
export function parseKeyOptions(text: string): KeyOptionsParse {
  const list: KeyOption[] = [];
  const seen = new Set<string>();
  let i = 0;
  for (;;) {
    const start = i;
    while (i < text.length && text[i] !== '=' && text[i] !== ',' && !isBlank(text[i])) i++;
    const name = text.slice(start, i);
    if (name === '') return { ok: false, reason: 'empty option name' };
    let value: string | undefined;
    let quoted = false;
    if (text[i] === '=') {
      i++;
      if (text[i] === '"') {
        quoted = true;
        i++;
        let v = '';
        for (;;) {
          const c = text[i];
          if (c === undefined) return { ok: false, reason: `option "${name}": missing closing quote` };
          if (c === '"') {
            i++;
            break;
          }
          if (c === '\\' && text[i + 1] === '"') {
            v += '"';
            i += 2;
            continue;
          }
          v += c;
          i++;
        }
        value = v;
        const after = text[i];
        if (after !== undefined && after !== ',' && !isBlank(after)) {
          return { ok: false, reason: `option "${name}": unexpected text after closing quote` };
        }
      } else {
        const vs = i;
        while (i < text.length && text[i] !== ',' && !isBlank(text[i])) {
          // A quote in the middle of an unquoted value would change where the option list
          // ends depending on the reader; refuse it.
          if (text[i] === '"') return { ok: false, reason: `option "${name}": stray quote in value` };
          i++;
        }
        value = text.slice(vs, i);
      }
    }
    const step = interpret({ name, value, quoted }, seen);
    if (!step.ok) return step;
    list.push(step.option);

    if (i >= text.length || isBlank(text[i])) break;
    // text[i] is ',' here: names stop only at '=', ',' or blanks, values at ',' or blanks.
    i++;
    if (i >= text.length || isBlank(text[i])) return { ok: false, reason: 'option list ends with a comma' };
  }

  const perKind = (kind: 'permitopen' | 'permitlisten'): PermitRule[] =>
    list.flatMap((o) => (o.kind === kind ? [o.rule] : []));
  for (const kind of ['permitopen', 'permitlisten'] as const) {
    const rules = perKind(kind);
    // "none" means "no destination at all"; next to real rules it is a contradiction whose
    // intent we cannot know.
    if (rules.includes('none') && rules.length > 1) {
      return { ok: false, reason: `option ${kind}="none" combined with other ${kind} options` };
    }
  }

  while (isBlank(text[i])) i++;
  return { ok: true, options: resolveKeyOptions(list), rest: text.slice(i) };
}
