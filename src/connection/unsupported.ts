// Settings lukko.conf can express that this release cannot honour yet. Those that would
// loosen what an operator asked for (resource limits, proxying) refuse every connection as a configuration error rather than run
// without them: restrictions only ever add up. The rest only lose a feature and are logged.
import type { Config, ListenerConfig } from '../config/index.ts';

export interface Unsupported {
  fatal: string[];
  ignored: string[];
}

export function unsupportedSettings(config: Config, listener: ListenerConfig): Unsupported {
  const fatal: string[] = [];
  const ignored: string[] = [];
  const at = `${listener.file}:${listener.line}`;
  if (listener.proxyTo) fatal.push(`${at}: proxy_to is not supported by this release`);
  if (listener.proxyToZeroconf) fatal.push(`${at}: proxy_to_zeroconf is not supported by this release`);
  const r = config.spawn.resources;
  if (Object.values(r).some((v) => v !== undefined)) fatal.push(`${config.path}: spawn resource limits are not enforced by this release`);
  if (listener.authorizedHostKeyFiles.length) ignored.push(`${at}: authorized_host_key_file: hostbased authentication is not offered by this release`);
  if (listener.pondServer) ignored.push(`${at}: pond_server: this release logs to the journal only`);
  return { fatal, ignored };
}
