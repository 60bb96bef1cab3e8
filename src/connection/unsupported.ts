// Settings lukko.conf can express that this release cannot honour (here). Those that would
// loosen what an operator asked for (resource limits outside systemd, proxying) refuse every
// connection as a configuration error rather than run
// without them: restrictions only ever add up. The rest only lose a feature and are logged.
import type { Config, ListenerConfig } from '../config/index.ts';

export interface Unsupported {
  fatal: string[];
  ignored: string[];
}

/** `unitLimits`: the connection runs in a systemd unit of its own, which can take resource limits. */
export function unsupportedSettings(config: Config, listener: ListenerConfig, where: { unitLimits: boolean } = { unitLimits: false }): Unsupported {
  const fatal: string[] = [];
  const ignored: string[] = [];
  const at = `${listener.file}:${listener.line}`;
  if (listener.proxyTo) fatal.push(`${at}: proxy_to is not supported by this release`);
  if (listener.proxyToZeroconf) fatal.push(`${at}: proxy_to_zeroconf is not supported by this release`);
  const r = config.spawn.resources;
  // They go on the connection's unit (src/spawn/unit-limits.ts); without one (`lukko serve`,
  // inetd) there is nothing to put them on.
  if (!where.unitLimits && Object.values(r).some((v) => v !== undefined)) {
    fatal.push(`${config.path}: spawn resource limits need lukko to run as lukko@.service (systemd), where they apply to each connection's unit`);
  }
  if (listener.authorizedHostKeyFiles.length) ignored.push(`${at}: authorized_host_key_file: hostbased authentication is not offered by this release`);
  if (listener.pondServer) ignored.push(`${at}: pond_server: this release logs to the journal only`);
  return { fatal, ignored };
}
