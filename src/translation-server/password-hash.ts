// Password hashes for the translation server's user file: scrypt (node:crypto) in the PHC
// string format, the same one Python's passlib and others write for scrypt:
//
//   $scrypt$ln=15,r=6,p=1$<salt>$<key>
//
// `ln` is log2 of the cost N, `r` the block size, `p` the parallelism; salt and key are
// standard base64 without padding. `lukko translation-server hash-password` writes a 16-byte
// random salt and a 32-byte key with DEFAULT_PARAMS. Anything else in a `password` line
// (plain text, crypt(3) hashes) is refused when the file is loaded, with a reason.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2(N) */
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

/**
 * N = 2^15, r = 6: 24 MiB and about 70 ms per verification on the 2-core test machine.
 * (r = 8, the usual choice, took 100 ms there; the memory stays in the same class.)
 */
export const DEFAULT_PARAMS: ScryptParams = { ln: 15, r: 6, p: 1 };

export const SALT_BYTES = 16;
export const KEY_BYTES = 32;

/** The most memory one verification may take: a user file must not be able to exhaust the host. */
export const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export interface PasswordHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly key: Buffer;
}

export class PasswordHashError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PasswordHashError';
  }
}

const HINT = 'use a hash made by `lukko translation-server hash-password`';

/** Known crypt(3) and PHC prefixes, so that a refusal can say what the value is. */
const OTHER_SCHEMES: readonly [RegExp, string][] = [
  [/^\$1\$/, 'an MD5-crypt hash'],
  [/^\$5\$/, 'a SHA-256-crypt hash'],
  [/^\$6\$/, 'a SHA-512-crypt hash'],
  [/^\$y\$/, 'a yescrypt hash'],
  [/^\$7\$/, 'a crypt(3) scrypt hash (not the PHC format)'],
  [/^\$2[abxy]?\$/, 'a bcrypt hash'],
  [/^\$argon2(id|i|d)\$/, 'an Argon2 hash'],
  [/^\$pbkdf2/, 'a PBKDF2 hash'],
];

export function encodeBase64(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}

/** Standard base64 without padding, canonical (re-encodes to the same text) or null. */
export function decodeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+$/.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64');
  return encodeBase64(bytes) === text ? bytes : null;
}

export function formatParams(params: ScryptParams): string {
  return `ln=${params.ln},r=${params.r},p=${params.p}`;
}

/** Throws PasswordHashError when a verification with these parameters would be unreasonable. */
export function checkParams(params: ScryptParams): void {
  const { ln, r, p } = params;
  if (!Number.isInteger(ln) || ln < 1 || ln > 24) throw new PasswordHashError(`scrypt ln=${ln} is outside 1..24`);
  if (!Number.isInteger(r) || r < 1 || r > 64) throw new PasswordHashError(`scrypt r=${r} is outside 1..64`);
  if (!Number.isInteger(p) || p < 1 || p > 16) throw new PasswordHashError(`scrypt p=${p} is outside 1..16`);
  if (memoryOf(params) > MAX_SCRYPT_MEMORY) {
    throw new PasswordHashError(`scrypt ${formatParams(params)} needs ${memoryOf(params) >> 20} MiB, more than ${MAX_SCRYPT_MEMORY >> 20} MiB`);
  }
}

function memoryOf(params: ScryptParams): number {
  return 128 * 2 ** params.ln * params.r;
}

/** "ln=15,r=6,p=1" (any order, each once) → params; throws PasswordHashError. */
export function parseParams(text: string): ScryptParams {
  const seen = new Map<string, number>();
  for (const item of text.split(',')) {
    const m = /^(ln|r|p)=([1-9][0-9]{0,3})$/.exec(item);
    if (m === null) throw new PasswordHashError(`scrypt parameter "${item.slice(0, 32)}" is not ln=, r= or p= with a number`);
    if (seen.has(m[1]!)) throw new PasswordHashError(`scrypt parameter ${m[1]} given twice`);
    seen.set(m[1]!, Number(m[2]));
  }
  const ln = seen.get('ln');
  const r = seen.get('r');
  const p = seen.get('p');
  if (ln === undefined || r === undefined || p === undefined) throw new PasswordHashError('scrypt parameters need ln, r and p');
  const params = { ln, r, p };
  checkParams(params);
  return params;
}

/** A stored hash string → its parts. Throws PasswordHashError with a reason an operator can act on. */
export function parsePasswordHash(text: string): PasswordHash {
  if (!text.startsWith('$')) {
    throw new PasswordHashError(`this looks like a plain-text password, which is refused; ${HINT}`);
  }
  if (!text.startsWith('$scrypt$')) {
    const other = OTHER_SCHEMES.find(([re]) => re.test(text));
    throw new PasswordHashError(`${other?.[1] ?? 'an unknown hash format'} is not supported; ${HINT}`);
  }
  const parts = text.split('$');
  if (parts.length !== 5) throw new PasswordHashError(`a scrypt hash is $scrypt$ln=N,r=N,p=N$salt$key; ${HINT}`);
  const params = parseParams(parts[2]!);
  const salt = decodeBase64(parts[3]!);
  const key = decodeBase64(parts[4]!);
  if (salt === null || key === null) throw new PasswordHashError('the salt or key of the scrypt hash is not base64 (without padding)');
  if (salt.length < 8 || salt.length > 64) throw new PasswordHashError(`a scrypt salt of ${salt.length} bytes is outside 8..64`);
  if (key.length < 16 || key.length > 64) throw new PasswordHashError(`a scrypt key of ${key.length} bytes is outside 16..64`);
  return { params, salt, key };
}

export function formatPasswordHash(hash: PasswordHash): string {
  return `$scrypt$${formatParams(hash.params)}$${encodeBase64(hash.salt)}$${encodeBase64(hash.key)}`;
}

function derive(password: Uint8Array, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  return new Promise((resolve, reject) => {
    // maxmem: node refuses when 128·N·r exceeds it; twice that leaves room for its own buffers.
    scrypt(password, salt, keylen, { N, r: params.r, p: params.p, maxmem: 2 * memoryOf(params) + 1024 * 1024 }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/** A new hash of `password` with a random salt. */
export async function hashPassword(password: string | Uint8Array, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  checkParams(params);
  const bytes = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(bytes, salt, KEY_BYTES, params);
  return formatPasswordHash({ params, salt, key });
}

/** Whether `password` (the raw bytes the client sent) matches; the comparison takes constant time. */
export async function verifyPassword(hash: PasswordHash, password: Uint8Array): Promise<boolean> {
  const key = await derive(password, hash.salt, hash.key.length, hash.params);
  return timingSafeEqual(key, hash.key);
}

/**
 * A hash no password matches (its key is random, not derived), for spending the time of one
 * real verification when there is nothing to verify against: unknown users, accounts without
 * a password. A request then takes as long whether the account exists or not.
 */
export function dummyHash(params: ScryptParams = DEFAULT_PARAMS): PasswordHash {
  return { params, salt: randomBytes(SALT_BYTES), key: randomBytes(KEY_BYTES) };
}
