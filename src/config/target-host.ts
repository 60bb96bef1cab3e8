// `target_host NAME { ... }`: a fixed SSH server that `proxy_to` forwards to.
// Deliberate lukko extension: the original documents this block but its top-level dispatcher never
// accepts it (so `proxy_to` can never work there); lukko wires it up.
import { parseAddress, type Address } from './address.ts';
import { ConfigError, type Location } from './errors.ts';
import type { LineCursor } from './lexer.ts';
import type { LineContext } from './reader.ts';
import { DEFAULT_TARGET_HOST_PORT, type Config, type TargetHostConfig } from './schema.ts';
import { dispatch, readAddress, readBool, readPath, type AttributeHandler, type BlockParser } from './settings.ts';

type TargetDraft = Omit<TargetHostConfig, 'address'> & { address?: Address };

const ATTRIBUTES = new Map<string, AttributeHandler<TargetDraft>>([
  ['address', (d, c) => {
    d.address = readAddress(c, { defaultPort: DEFAULT_TARGET_HOST_PORT });
  }],
  ['host_key_file', (d, c, ctx) => {
    d.hostKeyFiles.push(readPath(c, ctx));
  }],
  ['send_client_address', (d, c) => {
    d.sendClientAddress = readBool(c);
  }],
]);

export class TargetHostBlock implements BlockParser {
  readonly keyword = 'target_host';
  private readonly config: Config;
  private readonly draft: TargetDraft;

  /** Duplicates are refused on the opening line, where the name is. */
  constructor(config: Config, name: string, origin: Location) {
    if (config.targetHosts.has(name)) throw new ConfigError('Duplicate target_host name', { token: name });
    this.config = config;
    this.draft = { name, file: origin.file, line: origin.line, hostKeyFiles: [], sendClientAddress: false };
  }

  attribute(name: string, c: LineCursor, ctx: LineContext): void {
    dispatch(ATTRIBUTES, name, this.draft, c, ctx);
  }

  finish(): void {
    // Without `address`, the block's name is the address (e.g. `target_host "192.0.2.1" {`).
    const address = this.draft.address ?? parseAddress(this.draft.name, { defaultPort: DEFAULT_TARGET_HOST_PORT });
    if (this.draft.hostKeyFiles.length === 0) throw new ConfigError('No host key configured');
    this.config.targetHosts.set(this.draft.name, { ...this.draft, address });
  }
}
