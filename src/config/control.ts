// `control { ... }`: the UDP control socket (beng-proxy control protocol).
import { parseIPv4, parseIPv6, type Address, type InetAddress } from './address.ts';
import { cidrContains } from '../auth/address-match.ts';
import { ConfigError, type Location } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';
import { DEFAULT_CONTROL_PORT, type Config, type ControlConfig } from './schema.ts';
import { dispatch, readAddress, readValue, type AttributeHandler, type BlockParser } from './settings.ts';

type ControlDraft = Omit<ControlConfig, 'bind'> & { bind?: Address };

// The original leaves a non-multicast group to fail at startup; lukko reports it with the line.
function isMulticast(a: Address): a is InetAddress {
  if (a.kind !== 'inet') return false;
  const v4 = parseIPv4(a.host);
  if (v4 !== undefined) return (v4[0] ?? 0) >= 224 && (v4[0] ?? 0) <= 239;
  const v6 = parseIPv6(a.host);
  return v6 !== undefined && ((v6[0] ?? 0) & 0xff00) === 0xff00;
}

const ATTRIBUTES = new Map<string, AttributeHandler<ControlDraft>>([
  ['bind', (d, c) => {
    d.bind = readAddress(c, { defaultPort: DEFAULT_CONTROL_PORT, allowWildcard: true });
  }],
  ['multicast_group', (d, c) => {
    // The group's port is irrelevant (the bind port is used), so any default will do.
    const group = readAddress(c, { defaultPort: DEFAULT_CONTROL_PORT });
    if (!isMulticast(group)) throw c.failLast('Not a multicast address');
    d.multicastGroup = group;
  }],
  ['interface', (d, c) => {
    d.interface = readValue(c);
  }],
  // Not in the original (which lets any UDP sender run TERMINATE_CHILDREN): the senders whose
  // datagrams may change behaviour. A network with host bits set is refused as a likely typo.
  ['allow_from', (d, c) => {
    const v = readValue(c);
    if (cidrContains(v, '0.0.0.0') === 'invalid' || v.includes('%')) throw c.failLast('Not a valid address or network');
    (d.allowFrom ??= []).push(v);
  }],
]);

/** An IPv6 wildcard socket cannot join an IPv4 group, so such a bind falls back to 0.0.0.0. */
function adjustBindForGroup(bind: Address, group: Address | undefined): Address {
  if (group?.kind !== 'inet' || group.host.includes(':')) return bind;
  if (bind.kind !== 'inet' || !bind.wildcard || !(bind.host === '' || bind.host === '::')) return bind;
  return { kind: 'inet', host: '0.0.0.0', port: bind.port, wildcard: true };
}

export class ControlBlock implements BlockParser {
  readonly keyword = 'control';
  private readonly config: Config;
  private readonly draft: ControlDraft;

  constructor(config: Config, origin: Location) {
    this.config = config;
    this.draft = { file: origin.file, line: origin.line };
  }

  attribute(name: string, c: LineCursor, ctx: LineContext): void {
    dispatch(ATTRIBUTES, name, this.draft, c, ctx);
  }

  finish(): void {
    const { bind } = this.draft;
    if (bind === undefined) throw new ConfigError('Bind address is missing');
    // Local senders are judged by their uid; an address list there would suggest otherwise.
    if (bind.kind === 'unix' && this.draft.allowFrom !== undefined) throw new ConfigError("'allow_from' works only with UDP sockets");
    this.config.controls.push({ ...this.draft, bind: adjustBindForGroup(bind, this.draft.multicastGroup) });
  }
}
