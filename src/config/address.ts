// Socket address syntax of `bind`, `multicast_group`, `pond_server` and `target_host address`.
// Pure: only numeric hosts are accepted (the original resolves with AI_NUMERICHOST, so names fail
// there too), and `%scope` stays a string because interface lookup belongs to socket setup.
import { ConfigError } from './errors.ts';

export interface InetAddress {
  kind: 'inet';
  /** Canonical numeric host: dotted IPv4 or RFC 5952 IPv6; '' for `*` (binds `[::]`, dual-stack). */
  host: string;
  port: number;
  /** IPv6 zone (`%eth0`), unresolved. */
  scope?: string;
  /** `*`, `0.0.0.0` or `::`. */
  wildcard: boolean;
}

export interface UnixAddress {
  kind: 'unix';
  /** Filesystem path, or the abstract name without its leading `@`. */
  path: string;
  abstract: boolean;
}

export type Address = InetAddress | UnixAddress;

export interface AddressOptions {
  defaultPort: number;
  /** `*` / `*:PORT` are only meaningful for bind settings. */
  allowWildcard?: boolean;
}

// sun_path is 108 bytes: a filesystem path needs its NUL, an abstract name its leading NUL.
const MAX_UNIX_PATH = 107;

export function parseAddress(text: string, opts: AddressOptions): Address {
  if (text.startsWith('/')) return unixAddress(text, text, false);
  if (text.startsWith('@')) return unixAddress(text, text.slice(1), true);
  const { host, port, bracketed } = splitHostPort(text, opts.defaultPort);
  const fail = (gai: string): ConfigError => new ConfigError(`Failed to resolve "${host}":"${port}": ${gai}`, { token: text });
  const portNumber = parsePort(port);
  if (portNumber === undefined) throw fail('Servname not supported for ai_socktype');
  if (host === '*') {
    if (!opts.allowWildcard) throw fail('Name or service not known');
    return { kind: 'inet', host: '', port: portNumber, wildcard: true };
  }
  const inet = parseNumericHost(host);
  // Brackets exist to separate an IPv6 address from its port; `[1.2.3.4]` is a mistake.
  if (inet === undefined || (bracketed && !isIPv6Host(inet.host))) throw fail('Name or service not known');
  const result: InetAddress = { kind: 'inet', host: inet.host, port: portNumber, wildcard: inet.wildcard };
  if (inet.scope !== undefined) result.scope = inet.scope;
  return result;
}

function unixAddress(text: string, path: string, abstract: boolean): UnixAddress {
  if (new TextEncoder().encode(path).length > MAX_UNIX_PATH) throw new ConfigError('Socket path is too long', { token: text });
  return { kind: 'unix', path, abstract };
}

function splitHostPort(text: string, defaultPort: number): { host: string; port: string; bracketed: boolean } {
  const fallback = String(defaultPort);
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    const after = close < 0 ? undefined : text.slice(close + 1);
    if (after === undefined || (after !== '' && !after.startsWith(':'))) return { host: text, port: fallback, bracketed: false };
    return { host: text.slice(1, close), port: after === '' ? fallback : after.slice(1), bracketed: true };
  }
  const first = text.indexOf(':');
  // More than one colon is a bare IPv6 address, which cannot carry a port.
  if (first < 0 || text.indexOf(':', first + 1) >= 0) return { host: text, port: fallback, bracketed: false };
  return { host: text.slice(0, first), port: text.slice(first + 1), bracketed: false };
}

// Decimal port numbers only: the original also accepts /etc/services names here, but a pure
// parser cannot look them up, and a numeric port is unambiguous in a config file anyway.
function parsePort(port: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(port)) return undefined;
  const n = Number(port);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function parseNumericHost(host: string): { host: string; scope?: string; wildcard: boolean } | undefined {
  const percent = host.indexOf('%');
  const bare = percent < 0 ? host : host.slice(0, percent);
  const scope = percent < 0 ? undefined : host.slice(percent + 1);
  if (parseIPv4(bare) !== undefined) {
    if (scope !== undefined) return undefined; // zones exist only for IPv6
    return { host: bare, wildcard: bare === '0.0.0.0' };
  }
  const words = parseIPv6(bare);
  if (words === undefined || scope === '') return undefined;
  const canonical = formatIPv6(words);
  return scope === undefined ? { host: canonical, wildcard: canonical === '::' } : { host: canonical, scope, wildcard: false };
}

/** Strict dotted quad (no octal or shortened forms, which inet_aton would read surprisingly). */
export function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    bytes.push(Number(p));
  }
  return bytes;
}

/** Eight 16-bit words, or undefined. Accepts `::` compression and a trailing dotted quad. */
export function parseIPv6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseWords(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? parseWords(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
}

function parseWords(text: string, mayEndWithIPv4: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const words: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] ?? '';
    if (i === parts.length - 1 && mayEndWithIPv4 && p.includes('.')) {
      const v4 = parseIPv4(p);
      if (v4 === undefined) return undefined;
      words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(p)) {
      words.push(parseInt(p, 16));
    } else {
      return undefined;
    }
  }
  return words;
}

/**
 * RFC 5952 text, matching what Node (libuv) reports for socket addresses, including the dotted
 * tail of `::ffff:a.b.c.d` and `::a.b.c.d`, so that config and socket addresses compare as strings.
 */
export function formatIPv6(words: readonly number[]): string {
  const w = (i: number): number => words[i] ?? 0;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w(i) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w(j) === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) bestStart = -1;
  const dotted = bestStart === 0 && (bestLen === 6 || (bestLen === 5 && w(5) === 0xffff));
  const last = dotted ? 6 : 8;
  let out = '';
  for (let i = 0; i < last; i++) {
    if (i === bestStart) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    out += w(i).toString(16);
  }
  if (dotted) out += `${out.endsWith(':') ? '' : ':'}${w(6) >> 8}.${w(6) & 0xff}.${w(7) >> 8}.${w(7) & 0xff}`;
  return out;
}

export function isIPv6Host(host: string): boolean {
  return host.includes(':');
}

export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return a.abstract ? '@' + a.path : a.path;
  if (a.host === '') return `[::]:${a.port}`;
  if (!isIPv6Host(a.host)) return `${a.host}:${a.port}`;
  return `[${a.host}${a.scope === undefined ? '' : '%' + a.scope}]:${a.port}`;
}
