// `lukko keygen`: host keys in OpenSSH format, written once. Existing files are never
// touched: replacing a host key is an operator's decision, not a side effect.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';

export type KeyKind = 'ed25519' | 'ecdsa' | 'rsa';

export function generateHostKey(kind: KeyKind): { private: string; public: string } {
  const comment = `lukko@${hostname()}`;
  if (kind === 'ed25519') return ssh2.utils.generateKeyPairSync('ed25519', { comment });
  if (kind === 'ecdsa') return ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256, comment });
  return ssh2.utils.generateKeyPairSync('rsa', { bits: 3072, comment });
}

/** Writes host_<kind>_key(.pub) into dir for each kind that is missing; returns the paths written. */
export function writeMissingHostKeys(dir: string, kinds: KeyKind[]): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const kind of kinds) {
    const path = join(dir, `host_${kind}_key`);
    if (existsSync(path)) continue;
    const pair = generateHostKey(kind);
    writeFileSync(path, pair.private, { mode: 0o600, flag: 'wx' });
    writeFileSync(`${path}.pub`, pair.public + '\n', { mode: 0o644 });
    written.push(path);
  }
  return written;
}
