// The parsed configuration: types and their defaults.
import type { Address } from './address.ts';

export const DEFAULT_CONFIG_PATH = '/etc/cm4all/lukko/lukko.conf';

export const DEFAULT_LISTENER_PORT = 2200;
export const DEFAULT_CONTROL_PORT = 5478;
export const DEFAULT_PROMETHEUS_PORT = 9100;
export const DEFAULT_POND_PORT = 5479;
export const DEFAULT_TARGET_HOST_PORT = 22;

/** Where a block was opened. */
export interface Origin {
  file: string;
  line: number;
}

export type ZeroconfProtocol = 'inet' | 'inet6';

/** Zeroconf settings shared by `listener` (publishing) and `zeroconf_cluster` (browsing). */
export interface ZeroconfFields {
  zeroconfService?: string;
  zeroconfDomain?: string;
  zeroconfInterface?: string;
  zeroconfProtocol?: ZeroconfProtocol;
}

export interface ListenerConfig extends Origin, ZeroconfFields {
  /** True for the listener added because the file configures none. */
  implicit: boolean;
  bind: Address;
  interface?: string;
  /** Permission bits for an AF_UNIX socket; absent (or 0 in the file) leaves them to the umask. */
  mode?: number;
  mptcp: boolean;
  /** TCP_USER_TIMEOUT in seconds. */
  ackTimeout?: number;
  keepalive: boolean;
  v6only: boolean;
  reusePort: boolean;
  backlog: number;
  zeroconfWeight?: number;
  /** '' when unset. */
  tag: string;
  /** Absolute paths of private host keys; empty means the defaults from the config directory. */
  hostKeyFiles: string[];
  /** Absolute paths; a non-empty list enables `hostbased` authentication. */
  authorizedHostKeyFiles: string[];
  /** Name of a `target_host`. */
  proxyTo?: string;
  /** Name of a `zeroconf_cluster`. */
  proxyToZeroconf?: string;
  proxySkipOurOwn: boolean;
  /** 0 = unlimited. */
  maxConnectionsPerIp: number;
  tarpit: boolean;
  verboseErrors: boolean;
  execRejectStderr: boolean;
  acceptClientAddress: boolean;
  pondServer?: Address;
}

export interface ControlConfig extends Origin {
  bind: Address;
  multicastGroup?: Address;
  interface?: string;
  /**
   * lukko extension (`allow_from`): networks (`addr/len`) or single addresses whose UDP
   * datagrams may run commands that change behaviour. Absent: none may (docs/companion.md).
   */
  allowFrom?: string[];
}

export interface PrometheusExporterConfig extends Origin {
  bind: Address;
  interface?: string;
  mode?: number;
  v6only: boolean;
  reusePort: boolean;
  backlog: number;
}

export interface TargetHostConfig extends Origin {
  name: string;
  address: Address;
  /** Absolute paths of public key files used to verify the target's host key. */
  hostKeyFiles: string[];
  sendClientAddress: boolean;
}

export interface ZeroconfClusterConfig extends Origin, ZeroconfFields {
  name: string;
  zeroconfService: string;
  /** Absolute paths of public key files used to verify the members' host keys. */
  hostKeyFiles: string[];
  sendClientAddress: boolean;
}

/** A user or group as written: numbers are checked now, names are resolved at startup. */
export type IdSpec = { id: number } | { name: string };

export type MemoryLimit = { bytes: number } | { percent: number } | 'infinity';
export type SwapLimit = { bytes: number } | 'infinity';

export interface SpawnResources {
  cpuWeight?: number;
  ioWeight?: number;
  tasksMax?: number;
  memoryMin?: MemoryLimit;
  memoryLow?: MemoryLimit;
  memoryHigh?: MemoryLimit;
  memoryMax?: MemoryLimit;
  memorySwapMax?: SwapLimit;
}

export interface SpawnConfig {
  allowUsers: IdSpec[];
  /** From `allow_user "N-"`: every uid >= N. */
  allowUsersFrom?: number;
  allowGroups: IdSpec[];
  cgroupsWritableByGroup?: IdSpec;
  defaultUser?: IdSpec;
  systemdScopeOptional: boolean;
  resources: SpawnResources;
}

export interface Config {
  /** The main file, as given. */
  path: string;
  /** Absolute directory of the main file: default host keys and `authorized_keys` live here. */
  configDir: string;
  listeners: ListenerConfig[];
  controls: ControlConfig[];
  prometheusExporters: PrometheusExporterConfig[];
  targetHosts: Map<string, TargetHostConfig>;
  zeroconfClusters: Map<string, ZeroconfClusterConfig>;
  spawn: SpawnConfig;
  translationServer?: string;
  populateIoBuffers: boolean;
}

/** A listener while its block is being read: `bind` may still be missing. */
export type ListenerDraft = Omit<ListenerConfig, 'bind'> & { bind?: Address };

/** An explicit `listener` block before its attributes: backlog 256, everything else off. */
export function newListenerDraft(origin: Origin): ListenerDraft {
  return {
    file: origin.file,
    line: origin.line,
    implicit: false,
    mptcp: false,
    keepalive: false,
    v6only: false,
    reusePort: false,
    backlog: 256,
    tag: '',
    hostKeyFiles: [],
    authorizedHostKeyFiles: [],
    proxySkipOurOwn: false,
    maxConnectionsPerIp: 0,
    tarpit: false,
    verboseErrors: false,
    execRejectStderr: false,
    acceptClientAddress: false,
  };
}

/** Added when no listener is configured: `[::]:2200` dual-stack with keepalive and a 60 s ack timeout. */
export function implicitListener(file: string): ListenerConfig {
  const bind: Address = { kind: 'inet', host: '::', port: DEFAULT_LISTENER_PORT, wildcard: true };
  return { ...newListenerDraft({ file, line: 0 }), bind, implicit: true, backlog: 1024, ackTimeout: 60, keepalive: true };
}

export function newSpawnConfig(): SpawnConfig {
  return { allowUsers: [], allowGroups: [], systemdScopeOptional: false, resources: {} };
}

export function newConfig(path: string, configDir: string): Config {
  return {
    path,
    configDir,
    listeners: [],
    controls: [],
    prometheusExporters: [],
    targetHosts: new Map(),
    zeroconfClusters: new Map(),
    spawn: newSpawnConfig(),
    populateIoBuffers: false,
  };
}
