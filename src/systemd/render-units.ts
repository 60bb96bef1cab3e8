// `lukko units`: lukko.conf's `listener` blocks as a drop-in for lukko.socket.
//
// Under socket activation systemd owns the listening sockets, so the listener settings that
// shape a socket (address, device, permissions, dual-stack, backlog ...) have to become
// `[Socket]` settings. One socket unit has one value per setting for all of its ListenStream=
// lines: listeners that disagree on such a setting cannot share lukko.socket, and rendering
// fails (exit 78) instead of silently giving one listener the other's setting. Everything
// lukko applies per connection (host keys, tag, verbose_errors, ...) needs no socket setting:
// `lukko connection` finds its listener block again from the connection's local address
// (selectListener), which matches because ListenStream= carries the configured address.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ini from 'ini';
import { formatAddress } from '../config/index.ts';
import type { Config, InetAddress, ListenerConfig } from '../config/index.ts';
import { unsupportedSettings } from '../connection/unsupported.ts';

export const SOCKET_UNIT = 'lukko.socket';
export const DROP_IN_NAME = '50-lukko-conf.conf';
/** Relative to a unit directory such as /etc/systemd/system. */
export const DROP_IN_PATH = `${SOCKET_UNIT}.d/${DROP_IN_NAME}`;

export interface RenderedDropIn {
  /** The drop-in file, comments included. */
  text: string;
  /** What the drop-in cannot express, and what happens instead; also in `text` as comments. */
  notes: string[];
}

/** Listeners that cannot share one socket unit; `problems` say which and why. */
export class UnitRenderError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.name = 'UnitRenderError';
    this.problems = problems;
  }
}

const where = (l: ListenerConfig): string => (l.implicit ? `${l.file}, implicit` : `${l.file}:${l.line}`);
const label = (l: ListenerConfig): string => `listener ${formatAddress(l.bind)} (${where(l)})`;

function isInet(l: ListenerConfig): l is ListenerConfig & { bind: InetAddress } {
  return l.bind.kind === 'inet';
}

/** `*` and `[::]`: the sockets on which IPV6_V6ONLY decides whether IPv4 arrives too. */
function isIPv6Wildcard(l: ListenerConfig): boolean {
  return l.bind.kind === 'inet' && l.bind.wildcard && (l.bind.host === '' || l.bind.host === '::');
}

/** systemd expands `%` specifiers in ListenStream=; a literal `%` is `%%`. */
const escapeSpecifiers = (s: string): string => s.replace(/%/g, '%%');

/** The ListenStream= value for a bind address. */
/** systemd's Backlog= default: SOMAXCONN, 4096 since Linux 5.4. */
export const SYSTEMD_DEFAULT_BACKLOG = 4096;

export function listenStreamValue(l: ListenerConfig): string {
  const b = l.bind;
  if (b.kind === 'unix') return escapeSpecifiers(b.abstract ? `@${b.path}` : b.path);
  // `*:PORT`: a bare port is systemd's own wildcard, [::] with IPv4 mapped in (BindIPv6Only=),
  // or 0.0.0.0 on a host without IPv6, which is what lukko's "IPv6 preferred" means too.
  if (b.host === '') return String(b.port);
  return escapeSpecifiers(formatAddress(b));
}

/**
 * One value for a whole socket unit from the listeners it concerns. `undefined` values count:
 * a listener without `interface` disagrees with one that has it.
 */
function agree<T>(
  listeners: ListenerConfig[],
  value: (l: ListenerConfig) => T,
  show: (v: T) => string,
  keyword: string,
  problems: string[],
): { value: T } | undefined {
  const first = listeners[0];
  if (first === undefined) return undefined;
  const v0 = value(first);
  const differing = listeners.filter((l) => value(l) !== v0);
  if (!differing.length) return { value: v0 };
  problems.push(
    `${keyword} differs between listeners that would share ${SOCKET_UNIT} (one value for the whole unit): ` +
      listeners.map((l) => `${label(l)}: ${show(value(l))}`).join('; '),
  );
  return undefined;
}

// Interface names go into the drop-in as they are: refuse what systemd or ini would mangle.
const SAFE_INTERFACE = /^[A-Za-z0-9_.@-]{1,15}$/;

/** Renders lukko.socket.d/50-lukko-conf.conf. Throws UnitRenderError when listeners disagree. */
export function renderSocketDropIn(config: Config): RenderedDropIn {
  const listeners = config.listeners;
  const inet = listeners.filter(isInet);
  const unix = listeners.filter((l) => l.bind.kind === 'unix');
  const problems: string[] = [];
  const notes: string[] = [];
  const socket: Record<string, string> = {};

  if (!listeners.length) throw new UnitRenderError([`${config.path}: no listener to render`]);

  // ListenStream=, one per listener, in the file's order.
  const seen = new Map<string, ListenerConfig>();
  for (const l of listeners) {
    const v = listenStreamValue(l);
    const before = seen.get(v);
    if (before) problems.push(`${label(l)} binds the same address as ${label(before)}`);
    seen.set(v, l);
  }
  const implicit = listeners.find((l) => l.implicit);
  if (implicit) {
    notes.push(
      `${config.path} has no listener block, so this is lukko's implicit default listener ${formatAddress(implicit.bind)} ` +
        `(port ${implicit.bind.kind === 'inet' ? implicit.bind.port : '?'}, not 22): the drop-in moves lukko.socket there`,
    );
  }

  // interface → BindToDevice=
  const device = agree(listeners, (l) => l.interface, (v) => v ?? '(none)', 'interface', problems);
  if (device?.value !== undefined) {
    if (SAFE_INTERFACE.test(device.value)) socket.BindToDevice = device.value;
    else problems.push(`interface "${device.value}" is not a network interface name systemd's BindToDevice= takes`);
  }

  // mode → SocketMode= (AF_UNIX only; the parser refuses it elsewhere)
  const mode = agree(unix, (l) => l.mode || undefined, (v) => (v === undefined ? '(umask)' : `0${v.toString(8)}`), 'mode', problems);
  if (mode) {
    if (mode.value !== undefined) socket.SocketMode = `0${mode.value.toString(8).padStart(3, '0')}`;
    else {
      // lukko leaves the permissions to the umask (services get 0022, i.e. 0755: only root may
      // connect); systemd's own default of 0666 would let every local user connect.
      socket.SocketMode = '0755';
      notes.push(`${unix.map(label).join(', ')}: no mode in ${config.path}; lukko would leave it to the umask (0022 for services), so SocketMode=0755 (root may connect) instead of systemd's default 0666`);
    }
  }

  // v6only → BindIPv6Only= (decides only for the IPv6 wildcard; a specific address is one family)
  const wild6 = listeners.filter(isIPv6Wildcard);
  const v6only = agree(wild6, (l) => l.v6only, (v) => (v ? 'yes' : 'no'), 'v6only', problems);
  if (v6only) socket.BindIPv6Only = v6only.value ? 'ipv6-only' : 'both';

  // reuse_port → ReusePort=
  const reusePort = agree(listeners, (l) => l.reusePort, (v) => (v ? 'yes' : 'no'), 'reuse_port', problems);
  if (reusePort?.value) socket.ReusePort = 'yes';

  // mptcp → SocketProtocol=mptcp (TCP only)
  const mptcp = agree(inet, (l) => l.mptcp, (v) => (v ? 'yes' : 'no'), 'mptcp', problems);
  if (mptcp?.value) {
    socket.SocketProtocol = 'mptcp';
    notes.push(
      'mptcp: SocketProtocol=mptcp needs systemd 256 or later; older versions ignore the line with a warning and listen with plain TCP. ' +
        'The kernel must allow MPTCP (net.mptcp.enabled=1), or the sockets cannot be created, as lukko\'s own could not',
    );
  }

  // keepalive → KeepAlive=. lukko.socket already turns it on for every connection (with 2 min +
  // 4 × 30 s instead of the kernel's 2 h 11 min), so that connections to vanished peers free
  // their instance; a listener without `keepalive` cannot switch that off for itself.
  if (listeners.some((l) => l.keepalive)) socket.KeepAlive = 'yes';
  const noKeepalive = listeners.filter((l) => !l.keepalive);
  if (noKeepalive.length) {
    notes.push(`${noKeepalive.map(label).join(', ')}: keepalive is off in ${config.path}, but lukko.socket's KeepAlive=yes (120 s idle, 4 probes 30 s apart) applies to every connection; a drop-in with KeepAlive=no switches it off for the whole socket`);
  }
  if (socket.KeepAlive) notes.push('keepalive: lukko.socket\'s timers (KeepAliveTimeSec=120, KeepAliveIntervalSec=30, KeepAliveProbes=4) replace the kernel defaults lukko would use');

  // max_connections_per_ip → MaxConnectionsPerSource= (TCP only: AF_UNIX peers are never counted)
  const perIp = agree(inet, (l) => l.maxConnectionsPerIp, (v) => (v ? String(v) : 'unlimited'), 'max_connections_per_ip', problems);
  if (perIp?.value) {
    socket.MaxConnectionsPerSource = String(perIp.value);
    notes.push(
      `max_connections_per_ip ${perIp.value} → MaxConnectionsPerSource=${perIp.value}, a backstop: lukko-companion.service enforces the limit ` +
        'per listener with an SSH DISCONNECT "Too many connections"; systemd counts a source over all addresses of lukko.socket, ' +
        'closes surplus connections without a word, and keeps counting failed instances until they are collected, ' +
        'but it still holds while the companion is stopped (instances then go on without it)',
    );
  }
  if (listeners.some((l) => l.tarpit)) {
    notes.push('tarpit: held by lukko-companion.service for all instances; while it is stopped, connections are not delayed');
  }

  // backlog → Backlog=: the largest one; a longer queue holds more pending connections, nothing
  // else. systemd's default is SOMAXCONN (4096), far above lukko's defaults (256, 1024), so a
  // backlog only ever makes the queue longer: rendering 256 would shorten it and let a burst of
  // connections be dropped that the unit as shipped would have queued.
  const backlogs = [...new Set(listeners.map((l) => l.backlog))];
  const backlog = Math.max(...backlogs);
  if (backlog > SYSTEMD_DEFAULT_BACKLOG) {
    socket.Backlog = String(backlog);
    if (backlogs.length > 1) notes.push(`backlog: the listeners ask for ${backlogs.join(', ')}; one socket unit has one Backlog=, the largest (${backlog})`);
  } else {
    notes.push(`backlog ${backlogs.join(', ')}: lukko.socket keeps systemd's default Backlog= (SOMAXCONN, ${SYSTEMD_DEFAULT_BACKLOG}), which is longer`);
  }

  // FreeBind=: not a lukko keyword, but a socket unit bound to one address must be able to
  // start before that address is configured (systemd.socket(5)); otherwise boot fails it.
  const specific = inet.filter((l) => !l.bind.wildcard);
  if (specific.length) {
    socket.FreeBind = 'yes';
    notes.push(`${specific.map(label).join(', ')}: FreeBind=yes (not a lukko setting) so that lukko.socket starts even before the address is configured`);
  }

  // Per-listener settings with no socket counterpart.
  for (const l of listeners) {
    if (l.ackTimeout !== undefined) {
      notes.push(`${label(l)}: ack_timeout ${l.ackTimeout} (TCP_USER_TIMEOUT) has no [Socket] setting; it is not applied, and lukko.socket's keepalive (about 4 min) ends connections to peers that vanished`);
    }
    const named = (pairs: [unknown, string][]): string[] => pairs.filter(([on]) => on).map(([, name]) => name);
    const perConnection = named([[l.hostKeyFiles.length, 'host_key_file'], [l.verboseErrors, 'verbose_errors']]);
    if (perConnection.length) {
      notes.push(`${label(l)}: lukko applies ${perConnection.join(', ')} itself, per connection (it finds this block again by the connection's local address); no socket setting needed`);
    }
    const inert = named([[l.tag, 'tag'], [l.execRejectStderr, 'exec_reject_stderr'], [l.acceptClientAddress, 'accept_client_address'], [l.proxySkipOurOwn, 'proxy_skip_our_own']]);
    if (inert.length) {
      notes.push(`${label(l)}: ${inert.join(', ')} need no socket setting; they take effect only with a translation server, hostbased authentication or proxying, which this release does not offer`);
    }
    if (l.zeroconfService) {
      notes.push(`${label(l)}: zeroconf_service "${l.zeroconfService}" is not announced by the socket unit: lukko-companion.service announces it through avahi-daemon (docs/companion.md)`);
    }
    // The rendered units run lukko as lukko@.service, where resource limits have a unit to go on.
    const unsupported = unsupportedSettings(config, l, { unitLimits: true });
    for (const m of unsupported.fatal) notes.push(`${label(l)}: lukko refuses its connections (exit 78, a failed instance) because ${m}`);
    for (const m of unsupported.ignored) notes.push(`${label(l)}: ignored by lukko: ${m}`);
  }
  if (config.controls.length || config.prometheusExporters.length) {
    notes.push('control and prometheus_exporter blocks are not rendered: lukko-companion.service serves them, and lukko.socket carries SSH only');
  }

  if (problems.length) {
    problems.push(`harmonise these settings in ${config.path}, or move the odd listener to a separate server; one Accept=yes socket unit has one value for each`);
    throw new UnitRenderError(problems);
  }

  return { text: formatDropIn(config, listeners, socket, [...new Set(notes)]), notes: [...new Set(notes)] };
}

/** `text` as `#` comment lines of at most about `width` characters. */
function comment(text: string, width = 96): string {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/)) {
    if (cur && cur.length + 1 + word.length > width - 4) {
      lines.push(cur);
      cur = word;
    } else cur = cur ? `${cur} ${word}` : word;
  }
  if (cur) lines.push(cur);
  return lines.map((l, i) => (i === 0 ? `# ${l}` : `#   ${l}`)).join('\n');
}

function formatDropIn(config: Config, listeners: ListenerConfig[], socket: Record<string, string>, notes: string[]): string {
  const head = [
    `# Generated by: lukko units --config ${config.path}`,
    '# Render it again after changing the listener blocks, rather than editing this file.',
    '# Apply with: systemctl daemon-reload && systemctl restart lukko.socket',
    '# (a reload alone leaves lukko.socket listening nowhere; live connections survive the restart)',
    '',
    '[Socket]',
    // ListenStream= is a list: the empty assignment drops lukko.socket's own port 22 first.
    // These lines are written by hand, not with ini: ini writes each key once (or as
    // `key[]=`), and quotes values that start with `[` such as `[::1]:22`, which systemd
    // would take literally.
    'ListenStream=',
    ...listeners.map((l) => `ListenStream=${listenStreamValue(l)}`),
  ];
  // The settings that occur once are plain key=value pairs, which ini writes.
  const rest = ini.stringify(socket, { whitespace: false });
  const tail = notes.length
    ? ['', '# Not expressed above (also printed by `lukko units`):', ...notes.map((n) => comment(`- ${n}`))]
    : [];
  return `${head.join('\n')}\n${rest}${tail.length ? `${tail.join('\n')}\n` : ''}`;
}

/** Writes the drop-in below `unitDir` (e.g. /etc/systemd/system) atomically; returns its path. */
export function writeSocketDropIn(unitDir: string, text: string): string {
  const dir = join(unitDir, `${SOCKET_UNIT}.d`);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const path = join(dir, DROP_IN_NAME);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, path);
  return path;
}
