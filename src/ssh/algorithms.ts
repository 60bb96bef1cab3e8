// The algorithm policy: nothing weaker than OpenSSH 9's defaults (no SHA-1 signatures, KEX
// or MACs, no CBC, no pre-authentication compression; strict KEX is always on in ssh2), but
// wide enough for the clients people use: OpenSSH, PuTTY, Dropbear, paramiko and net-ssh
// all share curve25519 or ECDH with at least one AES-CTR/GCM cipher and an SHA-2 MAC.
// Order is the server's preference; the client's preference decides (RFC 4253 7.1).
export const KEX = [
  'curve25519-sha256',
  'curve25519-sha256@libssh.org',
  'ecdh-sha2-nistp256',
  'ecdh-sha2-nistp384',
  'ecdh-sha2-nistp521',
  'diffie-hellman-group-exchange-sha256',
  'diffie-hellman-group16-sha512',
  'diffie-hellman-group18-sha512',
  'diffie-hellman-group14-sha256',
];

// Only the types of loaded keys are offered. `ssh-rsa` (SHA-1) is absent on purpose; the
// ssh2 patch in scripts/patch-ssh2.mjs makes the library respect that.
export const SERVER_HOST_KEY = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

export const CIPHER = [
  'chacha20-poly1305@openssh.com',
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-ctr',
  'aes192-ctr',
  'aes256-ctr',
];

export const MAC = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
];

// No compression, as the original: plain `zlib` runs attacker-controlled data through a
// decompressor before authentication, and zlib@openssh.com buys little on today's links
// while adding that decompressor to every session's attack surface.
export const COMPRESS = ['none'];

// User-authentication signature algorithms lukko verifies. The `ssh-rsa` name (SHA-1) is
// refused; RSA keys sign with rsa-sha2-256/512.
export const USER_KEY_TYPES = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
]);

export function serverAlgorithms() {
  return { kex: KEX, serverHostKey: SERVER_HOST_KEY, cipher: CIPHER, hmac: MAC, compress: COMPRESS };
}
