// Host keys: a listener's own `host_key_file`s, else host_ed25519_key, host_ecdsa_key and
// host_rsa_key from the configuration directory. A per-connection process never invents a
// key: a host key that changes on every connection would teach users to ignore the warning.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseKey } from './ssh2-lean.ts';

export const DEFAULT_HOST_KEY_FILES = ['host_ed25519_key', 'host_ecdsa_key', 'host_rsa_key'];
const MAX_KEY_FILE = 32768;

export interface HostKey {
  path: string;
  type: string;
  data: Buffer;
}

export class HostKeyError extends Error {}

export function parseHostKey(path: string, data: Buffer): HostKey {
  if (data.length > MAX_KEY_FILE) throw new HostKeyError(`${path}: host key file larger than ${MAX_KEY_FILE} bytes`);
  const parsed = parseKey(data);
  if (parsed instanceof Error) throw new HostKeyError(`${path}: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key.getPrivatePEM() === null) throw new HostKeyError(`${path}: not a private key`);
  return { path, type: key.type, data };
}

function readKey(path: string, optional: boolean): HostKey | undefined {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    if (optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HostKeyError(`${path}: ${(e as Error).message}`);
  }
  return parseHostKey(path, data);
}

export function loadHostKeys(configDir: string, listenerKeyFiles: readonly string[]): HostKey[] {
  const keys = listenerKeyFiles.length
    ? listenerKeyFiles.map((p) => readKey(p, false) as HostKey)
    : DEFAULT_HOST_KEY_FILES.map((f) => readKey(join(configDir, f), true)).filter((k): k is HostKey => !!k);
  if (keys.length === 0) {
    throw new HostKeyError(
      `no host key: none of ${DEFAULT_HOST_KEY_FILES.join(', ')} in ${configDir} (create them with "lukko keygen")`,
    );
  }
  return keys;
}
