// Who may change lukko's behaviour through a control socket: stricter than the original
// (spec/config-control-metrics.md §3.4), which acts on VERBOSE and the Zeroconf switches from
// any AF_UNIX sender whatever its uid, and on TERMINATE_CHILDREN and RELOAD_STATE from anyone
// who can reach a UDP or multicast socket. Pure: the facts come from the kernel (via
// lukko-control-recv), the rules from lukko.conf.
import { cidrContains } from '../auth/address-match.ts';
import type { ControlSource } from './control-frames.ts';
import { interpretControlCommand } from './control-commands.ts';
import type { ControlAction } from './control-commands.ts';
import { decodeControlDatagram } from './control-codec.ts';

export interface SenderPolicy {
  /** The companion's own uid: its operator's processes may send besides root's. */
  readonly ownUid: number;
  /** `allow_from` networks (UDP and multicast sockets); empty: no UDP sender is trusted. */
  readonly allowFrom: readonly string[];
}

export type SenderVerdict = { trusted: true; who: string } | { trusted: false; who: string; why: string };

function describe(source: ControlSource): string {
  if (source.kind === 'inet') return source.address.includes(':') ? `[${source.address}]:${source.port}` : `${source.address}:${source.port}`;
  return source.uid === undefined ? 'local sender without credentials' : `uid ${source.uid} pid ${source.pid ?? '?'}`;
}

/**
 * AF_UNIX: the credentials the kernel attached (SO_PASSCRED), so the uid cannot be forged; only
 * uid 0 and the companion's own uid are trusted. UDP: only a source address inside an
 * `allow_from` network. (A UDP source address can be spoofed; allow_from is meant for
 * networks where that is prevented, e.g. loopback or a management VLAN: docs/companion.md.)
 */
export function judgeSender(source: ControlSource, policy: SenderPolicy): SenderVerdict {
  const who = describe(source);
  if (source.kind === 'unix') {
    if (source.uid === undefined) return { trusted: false, who, why: 'the datagram carried no credentials' };
    if (source.uid === 0 || source.uid === policy.ownUid) return { trusted: true, who };
    return { trusted: false, who, why: `uid ${source.uid} is neither root nor the companion's own (${policy.ownUid})` };
  }
  if (policy.allowFrom.length === 0) return { trusted: false, who, why: 'UDP senders need allow_from in the control block' };
  if (policy.allowFrom.some((net) => cidrContains(net, source.address) === true)) return { trusted: true, who };
  return { trusted: false, who, why: 'the source is not in allow_from' };
}

/** An action the companion carries out. */
export type RunnableAction = Exclude<ControlAction, { kind: 'invalid' } | { kind: 'ignored' }>;

export interface DatagramPlan {
  /** What to do, in datagram order. */
  run: RunnableAction[];
  /** Commands refused because the sender is not trusted (each would have had an effect). */
  refused: RunnableAction[];
  /** Commands lukko acts on, sent with a payload it cannot use (VERBOSE not 1 byte, ...). */
  invalid: Extract<ControlAction, { kind: 'invalid' }>[];
  /** The datagram was malformed (after `run`, as the original does for its prefix). */
  error?: string;
}

/**
 * What one datagram leads to. Commands before a malformed part still run, as in the original
 * (vector M4); an untrusted sender runs nothing, and every command of theirs that would have
 * changed something is refused. A datagram longer than the helper could read is malformed.
 */
export function planDatagram(data: Buffer, truncated: boolean, verdict: SenderVerdict): DatagramPlan {
  const plan: DatagramPlan = { run: [], refused: [], invalid: [] };
  const decoded = truncated ? { ok: false as const, error: `datagram too long (length>${data.length})`, prefix: [] } : decodeControlDatagram(data);
  const commands = decoded.ok ? decoded.commands : decoded.prefix;
  if (!decoded.ok) plan.error = decoded.error;
  for (const command of commands) {
    const action = interpretControlCommand(command);
    if (action.kind === 'ignored') continue;
    if (action.kind === 'invalid') plan.invalid.push(action);
    else if (verdict.trusted) plan.run.push(action);
    else plan.refused.push(action);
  }
  return plan;
}
