// Maps an accepted connection back to the `listener` block it belongs to, using the socket's
// local address. Under systemd socket activation the socket may not be bound exactly as the
// config says, hence the fallbacks.
import { formatIPv6, parseIPv4, parseIPv6 } from './address.ts';
import type { ListenerConfig } from './schema.ts';

export type LocalAddress = { address: string; port: number; family?: string | number } | { path: string };

export type ListenerMatch = 'exact' | 'wildcard' | 'only' | 'first';

export interface ListenerSelection {
  listener: ListenerConfig;
  match: ListenerMatch;
}

interface NormalizedInet {
  host: string;
  port: number;
  /** IPv4, including an IPv4-mapped IPv6 address on a dual-stack socket. */
  v4: boolean;
}

function normalizeInet(local: { address: string; port: number; family?: string | number }): NormalizedInet {
  const bare = local.address.split('%')[0] ?? '';
  if (parseIPv4(bare) !== undefined) return { host: bare, port: local.port, v4: true };
  const words = parseIPv6(bare);
  if (words === undefined) return { host: bare.toLowerCase(), port: local.port, v4: local.family === 'IPv4' || local.family === 4 };
  const mapped = words.slice(0, 6).every((w, i) => w === (i === 5 ? 0xffff : 0));
  if (!mapped) return { host: formatIPv6(words), port: local.port, v4: false };
  const [hi = 0, lo = 0] = words.slice(6);
  return { host: `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`, port: local.port, v4: true };
}

/** Node reports an abstract socket path with a leading NUL; the config writes `@`. */
function normalizePath(path: string): string {
  return path.startsWith('\0') ? '@' + path.slice(1) : path;
}

function matchesExact(l: ListenerConfig, local: LocalAddress): boolean {
  const b = l.bind;
  if ('path' in local) return b.kind === 'unix' && (b.abstract ? '@' + b.path : b.path) === normalizePath(local.path);
  if (b.kind !== 'inet' || b.wildcard) return false;
  const n = normalizeInet(local);
  return b.port === n.port && b.host === n.host;
}

function matchesWildcard(l: ListenerConfig, local: LocalAddress): boolean {
  const b = l.bind;
  if ('path' in local || b.kind !== 'inet' || !b.wildcard) return false;
  const n = normalizeInet(local);
  if (b.port !== n.port) return false;
  if (b.host === '0.0.0.0') return n.v4;
  // `*` and `[::]` are IPv6 sockets: IPv4 arrives there only when they are dual-stack.
  return !n.v4 || !l.v6only;
}

export function selectListener(listeners: readonly ListenerConfig[], local: LocalAddress): ListenerSelection {
  const first = listeners[0];
  if (first === undefined) throw new Error('selectListener: no listeners configured');
  const exact = listeners.find((l) => matchesExact(l, local));
  if (exact !== undefined) return { listener: exact, match: 'exact' };
  const wildcard = listeners.find((l) => matchesWildcard(l, local));
  if (wildcard !== undefined) return { listener: wildcard, match: 'wildcard' };
  // systemd's ListenStream= may legitimately differ from the config's bind address.
  return { listener: first, match: listeners.length === 1 ? 'only' : 'first' };
}
