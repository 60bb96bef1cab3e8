// The restrictions a connection runs under.
//
// Built from the authorized_keys line that let the user in, then merged with restrictions
// from other sources (translation server, listener, proxy). Merging can only ever take
// permissions away: booleans are AND-ed, permit lists pile up as further constraints, the
// earliest expiry wins. `origins` records who imposed what so refusals can be logged with
// their cause.

import { matchFromPatterns } from './address-match.ts';
import type { AuthorizedKey } from './authorized-keys.ts';
import { FLAG_NAMES } from './key-options.ts';
import type { FlagName, KeyOptions } from './key-options.ts';
import { listenRuleMatches, openRuleMatches, permitRuleToString } from './permit.ts';
import type { PermitKind, PermitRule } from './permit.ts';

export type { PermitRule } from './permit.ts';

export interface Policy {
  forcedCommand?: string; // command=
  exec: boolean; // shell, exec and env requests (false for SFTP-only accounts)
  pty: boolean;
  portForwarding: boolean; // direct-tcpip / tcpip-forward allowed at all
  agentForwarding: boolean;
  x11Forwarding: boolean;
  userRc: boolean;
  homeReadOnly: boolean;
  permitOpen: PermitRule[][]; // every inner list (one per source) must allow; [] = no restriction
  permitListen: PermitRule[][];
  expiresAt?: number; // ms since epoch
  origins: string[]; // e.g. "/home/a/.ssh/authorized_keys:3 no-pty"
}

export function unrestrictedPolicy(): Policy {
  return {
    exec: true,
    pty: true,
    portForwarding: true,
    agentForwarding: true,
    x11Forwarding: true,
    userRc: true,
    homeReadOnly: false,
    permitOpen: [],
    permitListen: [],
    origins: [],
  };
}

// `origin` names the source, e.g. "/home/a/.ssh/authorized_keys:3".
export function policyFromKeyOptions(opts: KeyOptions, origin: string): Policy {
  // Which option last decided each flag, so the origin names the option that actually
  // took effect (`no-pty,pty` leaves no trace; `restrict,pty` blames restrict for the rest).
  const decidedBy = new Map<FlagName, string>();
  for (const o of opts.list) {
    if (o.kind === 'flag') decidedBy.set(o.flag, o.text);
    else if (o.kind === 'restrict') {
      for (const f of FLAG_NAMES) decidedBy.set(f, o.text);
    }
  }
  const origins: string[] = [];
  const note = (what: string): void => {
    const entry = `${origin} ${what}`;
    if (!origins.includes(entry)) origins.push(entry);
  };
  const flagState: ReadonlyArray<readonly [FlagName, boolean]> = [
    ['pty', opts.pty],
    ['port-forwarding', opts.portForwarding],
    ['agent-forwarding', opts.agentForwarding],
    ['X11-forwarding', opts.x11Forwarding],
    ['user-rc', opts.userRc],
  ];
  for (const [flag, enabled] of flagState) {
    if (!enabled) note(decidedBy.get(flag) ?? `no-${flag}`);
  }
  for (const o of opts.list) {
    if (o.kind === 'command' || o.kind === 'home-read-only' || o.kind === 'permitopen' || o.kind === 'permitlisten') {
      note(o.text);
    }
  }
  if (opts.expiresAt !== undefined) {
    const winner = opts.list.find((o) => o.kind === 'expiry-time' && o.expiresAt === opts.expiresAt);
    note(winner?.text ?? `expiry-time ${new Date(opts.expiresAt).toISOString()}`);
  }

  const p: Policy = {
    exec: true,
    pty: opts.pty,
    portForwarding: opts.portForwarding,
    agentForwarding: opts.agentForwarding,
    x11Forwarding: opts.x11Forwarding,
    userRc: opts.userRc,
    homeReadOnly: opts.homeReadOnly,
    permitOpen: opts.permitOpen.length > 0 ? [[...opts.permitOpen]] : [],
    permitListen: opts.permitListen.length > 0 ? [[...opts.permitListen]] : [],
    origins,
  };
  if (opts.command !== undefined) p.forcedCommand = opts.command;
  if (opts.expiresAt !== undefined) p.expiresAt = opts.expiresAt;
  return p;
}

// Combines two policies so that the result is at least as strict as each. Two different
// forced commands cannot both be obeyed: that is a conflict and the caller must refuse the
// login rather than pick one.
export function mergePolicies(a: Policy, b: Policy): Policy | { conflict: string } {
  if (a.forcedCommand !== undefined && b.forcedCommand !== undefined && a.forcedCommand !== b.forcedCommand) {
    const from = (p: Policy): string => {
      const o = p.origins.filter((s) => / command=/.test(s));
      return o.length > 0 ? ` (${o.join('; ')})` : '';
    };
    return {
      conflict:
        `conflicting forced commands: ${JSON.stringify(a.forcedCommand)}${from(a)}` +
        ` vs ${JSON.stringify(b.forcedCommand)}${from(b)}`,
    };
  }
  const origins = [...a.origins];
  for (const o of b.origins) if (!origins.includes(o)) origins.push(o);
  const merged: Policy = {
    exec: a.exec && b.exec,
    pty: a.pty && b.pty,
    portForwarding: a.portForwarding && b.portForwarding,
    agentForwarding: a.agentForwarding && b.agentForwarding,
    x11Forwarding: a.x11Forwarding && b.x11Forwarding,
    userRc: a.userRc && b.userRc,
    homeReadOnly: a.homeReadOnly || b.homeReadOnly,
    permitOpen: [...a.permitOpen.map((l) => [...l]), ...b.permitOpen.map((l) => [...l])],
    permitListen: [...a.permitListen.map((l) => [...l]), ...b.permitListen.map((l) => [...l])],
    origins,
  };
  const command = a.forcedCommand ?? b.forcedCommand;
  if (command !== undefined) merged.forcedCommand = command;
  if (a.expiresAt !== undefined || b.expiresAt !== undefined) {
    merged.expiresAt = Math.min(a.expiresAt ?? Infinity, b.expiresAt ?? Infinity);
  }
  return merged;
}

export interface PermitDecision {
  allowed: boolean;
  rule?: string; // the rule that allowed, or what refused, for log lines
}

function checkLists(
  kind: PermitKind,
  p: Policy,
  lists: PermitRule[][],
  matches: (r: PermitRule) => boolean,
): PermitDecision {
  // Port forwarding switched off beats any permit rule, as in sshd: permitopen only narrows
  // what port forwarding may reach, it never grants forwarding by itself.
  if (!p.portForwarding) return { allowed: false, rule: 'port forwarding disabled' };
  const used: string[] = [];
  for (const list of lists) {
    const hit = list.find(matches);
    if (hit === undefined) {
      const rules = list.map((r) => permitRuleToString(kind, r)).join(',');
      return { allowed: false, rule: `not matched by ${rules === '' ? `empty ${kind} list` : rules}` };
    }
    used.push(permitRuleToString(kind, hit));
  }
  return used.length > 0 ? { allowed: true, rule: used.join(' + ') } : { allowed: true };
}

// direct-tcpip to host:port as requested by the client (no name resolution).
export function permitOpenAllows(p: Policy, host: string, port: number): PermitDecision {
  return checkLists('permitopen', p, p.permitOpen, (r) => openRuleMatches(r, host, port));
}

// tcpip-forward with the bind address exactly as the client sent it. A rule without a host
// part matches only `localhost` and literal loopback addresses; see listenRuleMatches in
// permit.ts for why (sshd(8)'s permitlisten text and lukko's lack of GatewayPorts).
export function permitListenAllows(p: Policy, host: string, port: number): PermitDecision {
  return checkLists('permitlisten', p, p.permitListen, (r) => listenRuleMatches(r, host, port));
}

// Per-attempt checks of a matching key line: `from=` against the client address and
// `expiry-time=` against the clock ("a time after which the key will not be accepted":
// still good at the instant itself).
export function keyLineUsable(
  key: AuthorizedKey,
  ctx: { clientIp: string; now: number },
): { ok: true } | { ok: false; reason: string } {
  const where = `${key.source}:${key.line}`;
  const from = key.options.from;
  if (from !== undefined) {
    const m = matchFromPatterns(from, ctx.clientIp);
    if (m === 'invalid') return { ok: false, reason: `${where}: invalid from= pattern list "${from}"` };
    if (!m) return { ok: false, reason: `${where}: client address ${ctx.clientIp} not allowed by from="${from}"` };
  }
  const exp = key.options.expiresAt;
  if (exp !== undefined && ctx.now > exp) {
    return { ok: false, reason: `${where}: key expired at ${new Date(exp).toISOString()}` };
  }
  return { ok: true };
}
