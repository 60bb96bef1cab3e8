// Zeroconf settings shared by `listener` and `zeroconf_cluster`, and the cluster block itself.
import { ConfigError, type Location } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';
import type { Config, ZeroconfClusterConfig, ZeroconfFields } from './schema.ts';
import { dispatch, readBool, readPath, readValue, type AttributeHandler, type BlockParser } from './settings.ts';

/** Handles `zeroconf_service/domain/interface/protocol`; false if `name` is none of them. */
export function zeroconfAttribute(name: string, c: LineCursor, z: ZeroconfFields): boolean {
  switch (name) {
    case 'zeroconf_service':
      z.zeroconfService = once(c, z.zeroconfService, 'Duplicate Zeroconf service');
      return true;
    case 'zeroconf_domain':
      z.zeroconfDomain = once(c, z.zeroconfDomain, 'Duplicate Zeroconf domain');
      return true;
    case 'zeroconf_interface':
      requireService(c, z, 'Zeroconf interface without service');
      z.zeroconfInterface = once(c, z.zeroconfInterface, 'Duplicate Zeroconf interface');
      return true;
    case 'zeroconf_protocol': {
      requireService(c, z, 'Zeroconf protocol without service');
      const v = once(c, z.zeroconfProtocol, 'Duplicate Zeroconf protocol');
      if (v !== 'inet' && v !== 'inet6') throw c.failLast('Unrecognized Zeroconf protocol');
      z.zeroconfProtocol = v;
      return true;
    }
    default:
      return false;
  }
}

export function requireService(c: LineCursor, z: ZeroconfFields, reason: string): void {
  if (z.zeroconfService === undefined) throw c.failLast(reason);
}

function once(c: LineCursor, current: string | undefined, duplicate: string): string {
  const v = readValue(c);
  if (current !== undefined) throw c.failLast(duplicate);
  return v;
}

type ClusterDraft = Omit<ZeroconfClusterConfig, 'zeroconfService'> & { zeroconfService?: string };

const CLUSTER_ATTRIBUTES = new Map<string, AttributeHandler<ClusterDraft>>([
  ['host_key_file', (d, c, ctx) => {
    d.hostKeyFiles.push(readPath(c, ctx));
  }],
  ['send_client_address', (d, c) => {
    d.sendClientAddress = readBool(c);
  }],
]);

/** `zeroconf_cluster NAME { ... }`: a set of peers found by browsing, for `proxy_to_zeroconf`. */
export class ZeroconfClusterBlock implements BlockParser {
  readonly keyword = 'zeroconf_cluster';
  private readonly config: Config;
  private readonly draft: ClusterDraft;

  constructor(config: Config, name: string, origin: Location) {
    this.config = config;
    this.draft = { name, file: origin.file, line: origin.line, hostKeyFiles: [], sendClientAddress: false };
  }

  attribute(name: string, c: LineCursor, ctx: LineContext): void {
    // `zeroconf_weight` is a publishing setting and stays unknown here, as in the original.
    if (zeroconfAttribute(name, c, this.draft)) return;
    dispatch(CLUSTER_ATTRIBUTES, name, this.draft, c, ctx);
  }

  finish(): void {
    const { zeroconfService } = this.draft;
    if (zeroconfService === undefined) throw new ConfigError('Zeroconf service missing');
    if (this.draft.hostKeyFiles.length === 0) throw new ConfigError('No host key configured');
    const name = this.draft.name;
    if (this.config.zeroconfClusters.has(name)) throw new ConfigError('Duplicate zeroconf_cluster name', { token: name });
    this.config.zeroconfClusters.set(name, { ...this.draft, zeroconfService });
  }
}
