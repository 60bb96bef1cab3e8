// authorized_keys parser.
//
// Line format: `[options] keytype base64-blob [comment]`. Unlike the C++ original (spec
// §2.6), whitespace runs between fields are accepted as OpenSSH does, and the blob's own
// type string must agree with the textual key type. Every line that cannot be used is
// reported with a reason so operators can see why a key does not work; such a line never
// authorises anything.

import { emptyKeyOptions, parseKeyOptions } from './key-options.ts';
import type { KeyOptions } from './key-options.ts';

export interface AuthorizedKey {
  readonly source: string; // file name or other origin, for log lines
  readonly line: number; // 1-based
  readonly keyType: string;
  readonly blob: Buffer; // decoded public key blob, compared byte-exact with the client's
  readonly comment: string;
  readonly options: KeyOptions;
}

export interface KeyLineProblem {
  readonly source: string;
  readonly line: number;
  readonly reason: string;
}

const PLAIN_KEY_TYPES: ReadonlySet<string> = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'ssh-dss',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

// Certificates are recognised here so their lines parse; whether a certificate can log in
// is the authentication layer's decision.
const CERT_KEY_TYPE = /^[a-z0-9][a-z0-9.-]*-cert-v01@openssh\.com$/;

export function isKnownKeyType(t: string): boolean {
  return PLAIN_KEY_TYPES.has(t) || CERT_KEY_TYPE.test(t);
}

function isBlank(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

// Strict base64: Buffer.from(…, 'base64') silently skips garbage and accepts missing
// padding, which would let a corrupted line decode to some other blob. A canonical
// round trip rejects all of that, including non-zero padding bits.
function decodeBase64Strict(text: string): Buffer | null {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : null;
}

// Minimal SSH wire reader (RFC 4251 string/mpint are both uint32 length + bytes).
class WireReader {
  private off = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  string(): Buffer | null {
    if (this.off + 4 > this.buf.length) return null;
    const len = this.buf.readUInt32BE(this.off);
    if (len > this.buf.length - this.off - 4) return null;
    const out = this.buf.subarray(this.off + 4, this.off + 4 + len);
    this.off += 4 + len;
    return out;
  }
  atEnd(): boolean {
    return this.off === this.buf.length;
  }
}

const EC_FIELD_BYTES: Readonly<Record<string, number>> = { nistp256: 32, nistp384: 48, nistp521: 66 };

function validEcPoint(point: Buffer, curve: string): boolean {
  const n = EC_FIELD_BYTES[curve];
  if (n === undefined) return false;
  // Uncompressed (0x04 || X || Y) is what OpenSSH writes; compressed forms are legal SEC1.
  if (point[0] === 0x04) return point.length === 1 + 2 * n;
  return (point[0] === 0x02 || point[0] === 0x03) && point.length === 1 + n;
}

function validMpint(m: Buffer | null): boolean {
  return m !== null && m.length > 0;
}

// Checks the blob's embedded type string and, for plain keys, that the fields that follow
// have the expected shape with nothing left over. Returns a reason, or null when fine.
// Certificates are only checked for their type string: their body is verified when used.
function checkBlob(keyType: string, blob: Buffer): string | null {
  const r = new WireReader(blob);
  const embedded = r.string();
  if (embedded === null) return 'key blob is truncated';
  const embeddedType = embedded.toString('latin1');
  if (embeddedType !== keyType) {
    return `key type "${keyType}" does not match the blob's type "${embeddedType.slice(0, 64)}"`;
  }
  if (!PLAIN_KEY_TYPES.has(keyType)) return null;
  let ok: boolean;
  switch (keyType) {
    case 'ssh-ed25519':
      ok = r.string()?.length === 32;
      break;
    case 'sk-ssh-ed25519@openssh.com':
      ok = r.string()?.length === 32 && r.string() !== null;
      break;
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521':
    case 'sk-ecdsa-sha2-nistp256@openssh.com': {
      const curve = r.string()?.toString('latin1') ?? '';
      const expected = keyType.startsWith('sk-') ? 'nistp256' : keyType.slice('ecdsa-sha2-'.length);
      const point = r.string();
      ok = curve === expected && point !== null && validEcPoint(point, curve);
      if (ok && keyType.startsWith('sk-')) ok = r.string() !== null; // application
      break;
    }
    case 'ssh-rsa':
      ok = validMpint(r.string()) && validMpint(r.string());
      break;
    case 'ssh-dss':
      ok = validMpint(r.string()) && validMpint(r.string()) && validMpint(r.string()) && validMpint(r.string());
      break;
    default:
      ok = false;
  }
  if (!ok) return `malformed ${keyType} key blob`;
  if (!r.atEnd()) return 'trailing data after key blob';
  return null;
}

type LineParse = { ok: true; keyType: string; blob: Buffer; comment: string; options: KeyOptions } | { ok: false; reason: string };

function parseKeyPart(text: string, options: KeyOptions): LineParse {
  let i = 0;
  while (i < text.length && !isBlank(text[i])) i++;
  const keyType = text.slice(0, i);
  if (keyType === '') return { ok: false, reason: 'missing key type' };
  if (!isKnownKeyType(keyType)) return { ok: false, reason: `unknown key type "${keyType.slice(0, 64)}"` };
  while (isBlank(text[i])) i++;
  const bs = i;
  while (i < text.length && !isBlank(text[i])) i++;
  const b64 = text.slice(bs, i);
  if (b64 === '') return { ok: false, reason: 'missing key data' };
  const blob = decodeBase64Strict(b64);
  if (blob === null) return { ok: false, reason: 'invalid base64 key data' };
  const bad = checkBlob(keyType, blob);
  if (bad !== null) return { ok: false, reason: bad };
  while (isBlank(text[i])) i++;
  const comment = text.slice(i).replace(/[ \t]+$/, '');
  return { ok: true, keyType, blob, comment, options };
}

function parseLine(text: string): LineParse {
  let firstEnd = 0;
  while (firstEnd < text.length && !isBlank(text[firstEnd])) firstEnd++;
  const first = text.slice(0, firstEnd);
  if (isKnownKeyType(first)) return parseKeyPart(text, emptyKeyOptions());
  // Not a key type we know but shaped like one (and not like an option list): say so instead
  // of calling it an unsupported option.
  if (/^(ssh|ecdsa|sk)-[^=,"]*$/.test(first)) return { ok: false, reason: `unknown key type "${first.slice(0, 64)}"` };
  const opts = parseKeyOptions(text);
  if (!opts.ok) return opts;
  if (opts.rest === '') return { ok: false, reason: 'missing key after options' };
  return parseKeyPart(opts.rest, opts.options);
}

export function parseAuthorizedKeys(text: string, source: string): { entries: AuthorizedKey[]; problems: KeyLineProblem[] } {
  const entries: AuthorizedKey[] = [];
  const problems: KeyLineProblem[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let raw = lines[n] ?? '';
    if (raw.endsWith('\r')) raw = raw.slice(0, -1);
    let s = 0;
    while (isBlank(raw[s])) s++;
    const body = raw.slice(s);
    if (body === '' || body.startsWith('#')) continue;
    const line = n + 1;
    const r = parseLine(body);
    if (r.ok) {
      entries.push({ source, line, keyType: r.keyType, blob: r.blob, comment: r.comment, options: r.options });
    } else {
      problems.push({ source, line, reason: r.reason });
    }
  }
  return { entries, problems };
}
