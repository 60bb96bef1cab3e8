// permitopen / permitlisten rules: syntax and matching.
//
// A rule list comes from one source (one authorized_keys line, one translation response,
// one listener); a destination is allowed by that source when any of its rules matches.
// `none` is a rule that matches nothing, so a list holding only `none` forbids everything.

import { isLoopbackIp, matchPattern, normalizeIp } from './address-match.ts';

// host === null only for a permitlisten rule written as a bare port (see listenRuleMatches).
export type PermitRule = 'none' | { readonly host: string | null; readonly port: number | '*' };

export type PermitKind = 'permitopen' | 'permitlisten';

export type PermitParse = { ok: true; rule: PermitRule } | { ok: false; reason: string };

const HOSTNAME = /^[A-Za-z0-9_.-]+$/;
const HOST_PATTERN = /^[A-Za-z0-9_.*?-]+$/;

function parsePort(text: string): number | '*' | null {
  if (text === '*') return '*';
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  // Port 0 means "kernel picks" on the wire; as a rule it would be meaningless.
  return n >= 1 && n <= 65535 ? n : null;
}

// Splits `host:port` / `[v6]:port`; returns host === null when there is no host part.
function splitHostPort(value: string): { host: string | null; bracketed: boolean; port: string } | null {
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') return null;
    return { host: value.slice(1, close), bracketed: true, port: value.slice(close + 2) };
  }
  const colon = value.indexOf(':');
  if (colon < 0) return { host: null, bracketed: false, port: value };
  // A second colon means an unbracketed IPv6 address: ambiguous, so refuse.
  if (value.indexOf(':', colon + 1) >= 0) return null;
  return { host: value.slice(0, colon), bracketed: false, port: value.slice(colon + 1) };
}

function parseRule(kind: PermitKind, value: string): PermitParse {
  if (value === 'none') return { ok: true, rule: 'none' };
  const parts = splitHostPort(value);
  if (parts === null || (parts.host === null && kind === 'permitopen')) {
    return { ok: false, reason: `${kind} "${value}": expected ${kind === 'permitopen' ? 'host:port' : '[host:]port'}` };
  }
  const port = parsePort(parts.port);
  if (port === null) return { ok: false, reason: `${kind} "${value}": invalid port "${parts.port}"` };
  let host = parts.host;
  if (host === null) return { ok: true, rule: { host: null, port } };
  if (host === '') return { ok: false, reason: `${kind} "${value}": empty host` };
  if (parts.bracketed) {
    // Brackets exist to protect an IPv6 address's colons; nothing else belongs inside.
    if (!host.includes(':') || normalizeIp(host) === null) {
      return { ok: false, reason: `${kind} "${value}": invalid address in brackets` };
    }
    host = host.toLowerCase();
  } else if (kind === 'permitopen') {
    // OpenSSH: permitopen hosts are literal, no patterns; `*` alone means any host
    // (as in sshd_config's PermitOpen).
    if (host !== '*' && !HOSTNAME.test(host)) {
      return { ok: false, reason: `${kind} "${value}": host must be a literal name or address` };
    }
  } else if (!HOST_PATTERN.test(host)) {
    return { ok: false, reason: `${kind} "${value}": invalid host pattern` };
  }
  return { ok: true, rule: { host, port } };
}

export function parsePermitOpen(value: string): PermitParse {
  return parseRule('permitopen', value);
}

export function parsePermitListen(value: string): PermitParse {
  return parseRule('permitlisten', value);
}

export function permitRuleToString(kind: PermitKind, rule: PermitRule): string {
  if (rule === 'none') return `${kind}="none"`;
  const port = String(rule.port);
  if (rule.host === null) return `${kind}="${port}"`;
  const host = rule.host.includes(':') ? `[${rule.host}]` : rule.host;
  return `${kind}="${host}:${port}"`;
}

function sameHost(a: string, b: string): boolean {
  // Two spellings of one address (::1 vs 0:0::1, ::ffff:10.0.0.1 vs 10.0.0.1) are the same
  // destination; DNS names are case-insensitive. Nothing is resolved.
  const na = normalizeIp(a);
  const nb = normalizeIp(b);
  if (na !== null || nb !== null) return na === nb;
  return a.toLowerCase() === b.toLowerCase();
}

// direct-tcpip: the host is compared literally with what the client asked to connect to.
export function openRuleMatches(rule: PermitRule, host: string, port: number): boolean {
  if (rule === 'none') return false;
  if (rule.port !== '*' && rule.port !== port) return false;
  if (rule.host === null) return false;
  return rule.host === '*' || sameHost(rule.host, host);
}

// tcpip-forward: `host` is the bind address exactly as the client sent it.
//
// Reading of sshd(8) for a permitlisten without host part: the manual says the host is
// optional and warns that ssh(1) sends "localhost" when -R had no bind address, and that
// this name is treated differently from the explicit 127.0.0.1 / ::1. OpenSSH itself turns
// a bare port into the wildcard host and relies on its GatewayPorts default ("no") to keep
// the listener on loopback whatever the client asked for. lukko has no GatewayPorts: it
// binds "" on all interfaces (spec §4.4). To keep the outcome OpenSSH's default gives — a
// bare-port rule only ever yields a loopback listener — a bare port here matches only a
// requested host of "localhost" or a literal loopback address (127.0.0.0/8, ::1), never ""
// or a wildcard/external address. Granting more needs an explicit host (`*:8080`).
export function listenRuleMatches(rule: PermitRule, host: string, port: number): boolean {
  if (rule === 'none') return false;
  if (rule.port !== '*' && rule.port !== port) return false;
  if (rule.host === null) return host.toLowerCase() === 'localhost' || isLoopbackIp(host);
  // An address rule without wildcards compares as an address so spellings do not matter.
  if (!/[*?]/.test(rule.host) && normalizeIp(rule.host) !== null) return sameHost(rule.host, host);
  return matchPattern(rule.host.toLowerCase(), host.toLowerCase());
}
