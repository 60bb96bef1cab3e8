// Address and pattern matching for the authorized_keys `from=` option and for the
// permitopen/permitlisten rules.
//
// lukko never resolves names here (the equivalent of sshd's `UseDNS no`): the client is
// known only by its numeric address, so a `from=` pattern is compared with that address
// text (wildcards) or with the address itself (CIDR). Everything is pure and synchronous so
// it can be called from the authentication path without I/O.

export type IpFamily = 4 | 6;

export interface ParsedIp {
  readonly family: IpFamily;
  readonly bytes: Uint8Array; // 4 or 16 bytes, network order
}

// Glob matching with `*` (any run, including empty) and `?` (exactly one character).
// Deliberately iterative with single-star backtracking: patterns come from user-owned files
// and must not be able to make matching exponential.
export function matchPattern(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '*') {
      starP = p;
      starT = t;
      p++;
    } else if (pc !== undefined && (pc === '?' || pc === text[t])) {
      p++;
      t++;
    } else if (starP >= 0) {
      // Let the last `*` swallow one more character and retry from there.
      p = starP + 1;
      starT++;
      t = starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? '';
    // Strict dotted quad: no octal/hex/short forms, which inet_aton would read differently
    // from what a human writing the pattern meant.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseIPv6(input: string): Uint8Array | null {
  let s = input;
  const out = new Uint8Array(16);
  let v4: Uint8Array | null = null;
  if (s.includes('.')) {
    // Trailing embedded IPv4 (e.g. ::ffff:192.0.2.1): parse it separately and stand in two
    // zero groups for it so the group arithmetic below stays uniform.
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0) return null;
    v4 = parseIPv4(s.slice(lastColon + 1));
    if (v4 === null) return null;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return null;
  let head: string[];
  let tail: string[];
  if (dbl >= 0) {
    const h = s.slice(0, dbl);
    const t = s.slice(dbl + 2);
    head = h === '' ? [] : h.split(':');
    tail = t === '' ? [] : t.split(':');
    if (head.length + tail.length > 7) return null;
  } else {
    head = s.split(':');
    tail = [];
    if (head.length !== 8) return null;
  }
  const put = (groups: string[], start: number): boolean => {
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] ?? '';
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
      const n = parseInt(g, 16);
      out[(start + i) * 2] = n >> 8;
      out[(start + i) * 2 + 1] = n & 0xff;
    }
    return true;
  };
  if (!put(head, 0) || !put(tail, 8 - tail.length)) return null;
  if (v4 !== null) out.set(v4, 12);
  return out;
}

function isMappedV4(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

// Parses a numeric IPv4 or IPv6 address. An IPv6 zone suffix (`%eth0`) is ignored: it
// names an interface, not a different address. IPv4-mapped IPv6 addresses are returned as
// IPv4 because that is the peer they denote (a dual-stack socket reports IPv4 clients as
// ::ffff:a.b.c.d), and treating them as IPv4 keeps `from="10.0.0.0/8"` and negations
// such as `!192.0.2.1` effective for those clients.
export function parseIp(text: string): ParsedIp | null {
  if (text.includes(':')) {
    const pct = text.indexOf('%');
    const bytes = parseIPv6(pct >= 0 ? text.slice(0, pct) : text);
    if (bytes === null) return null;
    if (isMappedV4(bytes)) return { family: 4, bytes: bytes.slice(12) };
    return { family: 6, bytes };
  }
  const bytes = parseIPv4(text);
  return bytes === null ? null : { family: 4, bytes };
}

// Canonical text of an address: dotted quad, or RFC 5952 IPv6 (lowercase, no leading zeros,
// the longest run of two or more zero groups compressed). This is the text wildcard patterns
// are matched against, so `2001:db8::*` behaves the same whatever spelling the socket layer
// produced.
export function formatIp(ip: ParsedIp): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((b[i * 2] ?? 0) << 8) | (b[i * 2 + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((n) => n.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

// Canonical text for an address string, or null when it is not a numeric address.
export function normalizeIp(text: string): string | null {
  const ip = parseIp(text);
  return ip === null ? null : formatIp(ip);
}

export function isLoopbackIp(text: string): boolean {
  const ip = parseIp(text);
  if (ip === null) return false;
  if (ip.family === 4) return ip.bytes[0] === 127;
  return ip.bytes.every((v, i) => v === (i === 15 ? 1 : 0));
}

interface Cidr {
  readonly net: ParsedIp;
  readonly len: number;
}

// 'none' = not written as an address (a wildcard pattern); 'invalid' = looks like an
// address or network but is unusable.
function parseCidr(text: string): Cidr | 'none' | 'invalid' {
  const slash = text.indexOf('/');
  const addrText = slash >= 0 ? text.slice(0, slash) : text;
  const parsed = parseIp(addrText);
  if (slash < 0) {
    // A bare address is a network of one host. Wildcard patterns never parse as addresses.
    if (parsed === null) return 'none';
    return { net: parsed, len: parsed.family === 4 ? 32 : 128 };
  }
  // Anything with a slash is meant as a network; if we cannot read it we refuse rather
  // than silently treating it as a text pattern that would never match.
  if (parsed === null) return 'invalid';
  const lenText = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(lenText)) return 'invalid';
  let len = Number(lenText);
  const net = parsed;
  if (addrText.includes(':') && parsed.family === 4) {
    // parseIp turned ::ffff:a.b.c.d into IPv4; the prefix length counted the 96 mapping bits.
    if (len < 96) return 'invalid';
    len -= 96;
  }
  const max = net.family === 4 ? 32 : 128;
  if (len > max) return 'invalid';
  // Host bits set (10.1.2.3/8) almost always means a typo; OpenSSH refuses it too.
  if (!hostBitsZero(net.bytes, len)) return 'invalid';
  return { net, len };
}

function hostBitsZero(bytes: Uint8Array, len: number): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const bitsInThisByte = Math.max(0, Math.min(8, len - i * 8));
    const hostMask = 0xff >> bitsInThisByte;
    if (((bytes[i] ?? 0) & hostMask) !== 0) return false;
  }
  return true;
}

function cidrHas(c: Cidr, ip: ParsedIp): boolean {
  if (c.net.family !== ip.family) return false;
  for (let i = 0; i < c.net.bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, c.len - i * 8));
    const mask = (0xff00 >> bits) & 0xff;
    if (((c.net.bytes[i] ?? 0) & mask) !== ((ip.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

// Whether `ip` lies in network `cidr` (`addr/len`, or a bare address = one host).
// 'invalid' when `cidr` is not a usable network; false when `ip` is not a numeric address.
export function cidrContains(cidr: string, ip: string): boolean | 'invalid' {
  const c = parseCidr(cidr);
  if (c === 'invalid' || c === 'none') return 'invalid';
  const addr = parseIp(ip);
  return addr !== null && cidrHas(c, addr);
}

interface FromPattern {
  readonly negated: boolean;
  readonly body: string;
  readonly cidr: Cidr | null;
}

function compileFromPatterns(patterns: string): FromPattern[] | string {
  if (patterns === '') return 'empty pattern list';
  const out: FromPattern[] = [];
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const body = negated ? raw.slice(1) : raw;
    if (body === '') return 'empty pattern in list';
    const c = parseCidr(body);
    if (c === 'invalid') return `invalid address/network "${body}"`;
    // Hostnames are case-insensitive and addresses are compared in lowercase canonical form.
    out.push({ negated, body: body.toLowerCase(), cidr: c === 'none' ? null : c });
  }
  return out;
}

// Reason why a `from=` pattern list can never be evaluated, or null when it is well formed.
// The whole list is checked up front, so the verdict does not depend on which client asks.
export function validateFromPatterns(patterns: string): string | null {
  const c = compileFromPatterns(patterns);
  return typeof c === 'string' ? c : null;
}

// sshd's `from=` semantics with UseDNS off: the list matches when at least one positive
// pattern matches and no negated pattern does (a matching `!pattern` rejects at once,
// whatever else matched). A pattern that is an address or `addr/len` is compared as an
// address; anything else is a `*`/`?` glob over the canonical address text.
// 'invalid' (a malformed network or empty entry) must be treated as "no match".
export function matchFromPatterns(patterns: string, clientIp: string): boolean | 'invalid' {
  const compiled = compileFromPatterns(patterns);
  if (typeof compiled === 'string') return 'invalid';
  const addr = parseIp(clientIp);
  const text = addr !== null ? formatIp(addr) : clientIp.toLowerCase();
  let positive = false;
  for (const p of compiled) {
    const hit = p.cidr !== null ? addr !== null && cidrHas(p.cidr, addr) : matchPattern(p.body, text);
    if (!hit) continue;
    if (p.negated) return false;
    positive = true;
  }
  return positive;
}
