// Public API of the lukko.conf parser.
export { ConfigError } from './errors.ts';
export type { ConfigErrorOptions } from './errors.ts';
export { formatAddress, parseAddress } from './address.ts';
export type { Address, AddressOptions, InetAddress, UnixAddress } from './address.ts';
export { parseConfigText } from './parse.ts';
export type { ParseOptions } from './parse.ts';
export { loadConfig, nodeFileAccess } from './load.ts';
export type { FileAccess } from './reader.ts';
export { selectListener } from './listener-select.ts';
export type { ListenerMatch, ListenerSelection, LocalAddress } from './listener-select.ts';
export { parseByteSize } from './byte-size.ts';
export {
  DEFAULT_CONFIG_PATH,
  DEFAULT_CONTROL_PORT,
  DEFAULT_LISTENER_PORT,
  DEFAULT_POND_PORT,
  DEFAULT_PROMETHEUS_PORT,
  DEFAULT_TARGET_HOST_PORT,
} from './schema.ts';
export type {
  Config,
  ControlConfig,
  IdSpec,
  ListenerConfig,
  MemoryLimit,
  PrometheusExporterConfig,
  SpawnConfig,
  SpawnResources,
  SwapLimit,
  TargetHostConfig,
  ZeroconfClusterConfig,
  ZeroconfFields,
  ZeroconfProtocol,
} from './schema.ts';
