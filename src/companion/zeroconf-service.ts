// What the companion announces through Avahi for each listener with `zeroconf_service`
// (spec/config-control-metrics.md §6.1, §6.2): pure functions from lukko.conf to a service
// description, and the per-listener visibility state files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ListenerConfig } from '../config/index.ts';

/** `lukko` → `_lukko._tcp`; `_x._udp` stays. Undefined with the reason when not a valid type. */
export function zeroconfServiceType(value: string): { ok: true; type: string } | { ok: false; error: string } {
  let name: string;
  let type: string;
  if (value.startsWith('_') && value.includes('.')) {
    const m = /^_([^.]*)\._(tcp|udp)$/.exec(value);
    if (!m) return { ok: false, error: `Zeroconf service type "${value}" must be _NAME._tcp or _NAME._udp` };
    name = m[1]!;
    type = value;
  } else {
    name = value;
    type = `_${value}._tcp`;
  }
  if (!/^[A-Za-z0-9-]{1,15}$/.test(name) || !/[A-Za-z]/.test(name)) {
    return { ok: false, error: `Zeroconf service name "${name}" must be 1-15 letters, digits or '-', with at least one letter` };
  }
  return { ok: true, type };
}

/** Debian's name for the CPU, as the original's `arch=` TXT record says; undefined for others. */
export function debianArch(nodeArch: string = process.arch): string | undefined {
  return ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[nodeArch];
}

/** The instance name the original uses: the PID makes browsers see a restart as REMOVE/NEW. */
export function zeroconfInstanceName(pid: number = process.pid): string {
  return `Lukko[${pid}]`;
}

/**
 * TXT records: `arch=` on listeners that serve locally (not on proxying ones), `weight=` only
 * when configured, in the shortest form (`0.5`, `2`).
 */
export function zeroconfTxt(l: ListenerConfig, arch: string | undefined = debianArch()): string[] {
  const txt: string[] = [];
  if (arch !== undefined && l.proxyTo === undefined && l.proxyToZeroconf === undefined) txt.push(`arch=${arch}`);
  if (l.zeroconfWeight !== undefined) txt.push(`weight=${String(l.zeroconfWeight)}`);
  return txt;
}

export interface ZeroconfService {
  /** `file:line` of the listener, for logs. */
  where: string;
  tag: string;
  type: string;
  port: number;
  txt: string[];
}

/**
 * Which listeners are published and which cannot be. avahi-publish-service (the route lukko
 * takes to Avahi, docs/companion.md) publishes on every interface and both protocols. So a
 * listener the original would announce on one interface only (`zeroconf_interface`,
 * `interface`, or a bind to one address, which belongs to one interface) is NOT published:
 * announcing it on other networks would be worse than not at all. A listener the original
 * would announce over one IP protocol only is published on both, with a warning.
 */
export function planZeroconf(listeners: readonly ListenerConfig[]): { services: ZeroconfService[]; errors: string[]; warnings: string[] } {
  const services: ZeroconfService[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const l of listeners) {
    if (l.zeroconfService === undefined) continue;
    const where = `${l.file}:${l.line}`;
    const t = zeroconfServiceType(l.zeroconfService);
    if (!t.ok) {
      errors.push(`listener at ${where}: ${t.error}`);
      continue;
    }
    const b = l.bind;
    if (b.kind !== 'inet') {
      errors.push(`listener at ${where}: not published: Zeroconf announces TCP ports, this listener binds a local socket`);
      continue;
    }
    const iface = l.zeroconfInterface ?? l.interface ?? (b.wildcard ? undefined : `the interface of ${b.host}`);
    if (iface !== undefined) {
      errors.push(`listener at ${where}: not published: it would be announced on ${iface} only, and avahi-publish-service cannot restrict a service to one interface`);
      continue;
    }
    const v6 = b.host === '' || b.host.includes(':');
    const protocol = l.zeroconfProtocol ?? (v6 ? (b.wildcard && !l.v6only ? undefined : 'inet6') : 'inet');
    if (protocol !== undefined) warnings.push(`listener at ${where}: announced over IPv4 and IPv6 (the original would use ${protocol} only)`);
    services.push({ where, tag: l.tag, type: t.type, port: b.port, txt: zeroconfTxt(l) });
  }
  return { services, errors, warnings };
}

/** Where the per-listener state files are looked for, first match wins (the original's order). */
export const STATE_DIRECTORIES = ['/run/cm4all/state', '/etc/cm4all/state', '/var/lib/cm4all/state', '/lib/cm4all/state'];

/**
 * §6.2: `lukko/listener/<tag>/zeroconf` in the first state directory that has it; `0` hides
 * the listener, anything else (or no file, or no tag) leaves it visible.
 */
export function listenerVisible(tag: string, dirs: readonly string[] = STATE_DIRECTORIES, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): boolean {
  // A tag is a name, never a path: one with '/' or a dot-only name could point elsewhere.
  if (tag === '' || tag.includes('/') || tag.includes('\0') || /^\.+$/.test(tag)) return true;
  for (const dir of dirs) {
    let text: string;
    try {
      text = read(join(dir, 'lukko/listener', tag, 'zeroconf'));
    } catch {
      continue;
    }
    return text.trim() !== '0';
  }
  return true;
}
