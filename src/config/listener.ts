// `listener { ... }`: one SSH listening socket and its per-connection behaviour.
import { ConfigError, type Location } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';
import { DEFAULT_LISTENER_PORT, DEFAULT_POND_PORT, newListenerDraft, type Config, type ListenerDraft } from './schema.ts';
import {
  dispatch,
  readAddress,
  readBool,
  readMode,
  readPath,
  readPositiveInteger,
  readValue,
  type AttributeHandler,
  type BlockParser,
} from './settings.ts';
import { requireService, zeroconfAttribute } from './zeroconf.ts';

const MAX_TAG_BYTES = 256;
const MAX_ZEROCONF_WEIGHT = 1e6;
// TCP_USER_TIMEOUT takes milliseconds in 32 bits; the original multiplies and silently wraps.
const MAX_ACK_TIMEOUT = Math.floor(0xffffffff / 1000);

type Handler = AttributeHandler<ListenerDraft>;

const flag =
  (key: 'mptcp' | 'keepalive' | 'v6only' | 'reusePort' | 'proxySkipOurOwn' | 'tarpit' | 'verboseErrors' | 'execRejectStderr' | 'acceptClientAddress'): Handler =>
  (d, c) => {
    d[key] = readBool(c);
  };

function readAckTimeout(d: ListenerDraft, c: LineCursor): void {
  const seconds = readPositiveInteger(c);
  if (seconds > MAX_ACK_TIMEOUT) throw c.failLast('Value is too large');
  d.ackTimeout = seconds;
}

function readTag(d: ListenerDraft, c: LineCursor): void {
  const tag = readValue(c);
  if (new TextEncoder().encode(tag).length > MAX_TAG_BYTES) throw c.failLast('Value is too long');
  d.tag = tag;
}

function readWeight(d: ListenerDraft, c: LineCursor): void {
  requireService(c, d, 'zeroconf_weight without zeroconf_service');
  const v = readValue(c);
  if (d.zeroconfWeight !== undefined) throw c.failLast('Duplicate zeroconf_weight');
  // Plain decimal notation (what strtod would accept, minus hex floats, inf and nan).
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(v)) throw c.failLast('Failed to parse number');
  const weight = Number(v);
  if (!(weight > 0 && weight <= MAX_ZEROCONF_WEIGHT)) throw c.failLast('Bad zeroconf_weight value');
  d.zeroconfWeight = weight;
}

/** Both proxy settings share one slot: a listener proxies to a target host or a cluster. */
function hasProxy(d: ListenerDraft): boolean {
  return d.proxyTo !== undefined || d.proxyToZeroconf !== undefined;
}

const attributes = (config: Config): ReadonlyMap<string, Handler> =>
  new Map<string, Handler>([
    ['bind', (d, c) => {
      d.bind = readAddress(c, { defaultPort: DEFAULT_LISTENER_PORT, allowWildcard: true });
    }],
    ['interface', (d, c) => {
      d.interface = readValue(c);
    }],
    ['mode', (d, c) => {
      d.mode = readMode(c, d.bind);
    }],
    ['mptcp', flag('mptcp')],
    ['ack_timeout', readAckTimeout],
    ['keepalive', flag('keepalive')],
    ['v6only', flag('v6only')],
    ['reuse_port', flag('reusePort')],
    ['zeroconf_weight', readWeight],
    ['tag', readTag],
    ['host_key_file', (d, c, ctx) => {
      d.hostKeyFiles.push(readPath(c, ctx));
    }],
    ['authorized_host_key_file', (d, c, ctx) => {
      d.authorizedHostKeyFiles.push(readPath(c, ctx));
    }],
    ['proxy_to', (d, c) => {
      // lukko accepts `target_host` blocks (the original never wired them up), so this can work.
      const name = readValue(c);
      if (hasProxy(d)) throw c.failLast("Duplicate 'proxy_to'");
      if (!config.targetHosts.has(name)) throw c.failLast('No such target_host');
      d.proxyTo = name;
    }],
    ['proxy_to_zeroconf', (d, c) => {
      const name = readValue(c);
      if (hasProxy(d)) throw c.failLast("Duplicate 'proxy_to_zeroconf'");
      if (!config.zeroconfClusters.has(name)) throw c.failLast('No such zeroconf_cluster');
      d.proxyToZeroconf = name;
    }],
    ['proxy_skip_our_own', flag('proxySkipOurOwn')],
    ['max_connections_per_ip', (d, c) => {
      d.maxConnectionsPerIp = readPositiveInteger(c);
    }],
    ['tarpit', flag('tarpit')],
    ['verbose_errors', flag('verboseErrors')],
    ['exec_reject_stderr', flag('execRejectStderr')],
    ['accept_client_address', flag('acceptClientAddress')],
    ['pond_server', (d, c) => {
      d.pondServer = readAddress(c, { defaultPort: DEFAULT_POND_PORT });
    }],
  ]);

export class ListenerBlock implements BlockParser {
  readonly keyword = 'listener';
  private readonly config: Config;
  private readonly draft: ListenerDraft;
  private readonly table: ReadonlyMap<string, Handler>;

  constructor(config: Config, origin: Location) {
    this.config = config;
    this.draft = newListenerDraft(origin);
    this.table = attributes(config);
  }

  attribute(name: string, c: LineCursor, ctx: LineContext): void {
    if (zeroconfAttribute(name, c, this.draft)) return;
    dispatch(this.table, name, this.draft, c, ctx);
  }

  finish(): void {
    const { bind } = this.draft;
    if (bind === undefined) throw new ConfigError('Listener has no bind address');
    // A later `bind` may have replaced the AF_UNIX address that `mode` was checked against.
    if (this.draft.mode !== undefined && bind.kind !== 'unix') throw new ConfigError("'mode' works only with local sockets");
    this.config.listeners.push({ ...this.draft, bind });
  }
}
