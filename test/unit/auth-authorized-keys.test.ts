import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isKnownKeyType, parseAuthorizedKeys } from '../../src/auth/authorized-keys.ts';

// --- building OpenSSH public key blobs ourselves -------------------------------------------

function sshString(b: Buffer | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function mpint(b: Buffer): Buffer {
  let v = b;
  while (v.length > 1 && v[0] === 0) v = v.subarray(1);
  if ((v[0] ?? 0) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return sshString(v);
}

function jwkBytes(s: string | undefined): Buffer {
  assert.ok(s !== undefined);
  return Buffer.from(s, 'base64url');
}

function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.concat([sshString('ssh-ed25519'), sshString(jwkBytes(jwk.x))]);
}

function ecdsaBlob(curve: 'P-256' | 'P-384' | 'P-521'): { type: string; blob: Buffer } {
  const name = { 'P-256': 'nistp256', 'P-384': 'nistp384', 'P-521': 'nistp521' }[curve];
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), jwkBytes(jwk.x), jwkBytes(jwk.y)]);
  const type = `ecdsa-sha2-${name}`;
  return { type, blob: Buffer.concat([sshString(type), sshString(name), sshString(point)]) };
}

function rsaBlob(): Buffer {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.concat([sshString('ssh-rsa'), mpint(jwkBytes(jwk.e)), mpint(jwkBytes(jwk.n))]);
}

const ED = ed25519Blob();
const ED_B64 = ED.toString('base64');

function one(text: string) {
  const r = parseAuthorizedKeys(text, 'src');
  return r;
}

function onlyEntry(text: string) {
  const r = one(text);
  assert.deepEqual(r.problems, []);
  assert.equal(r.entries.length, 1);
  const e = r.entries[0];
  assert.ok(e !== undefined);
  return e;
}

function onlyProblem(text: string): string {
  const r = one(text);
  assert.equal(r.entries.length, 0, 'line must not be usable');
  assert.equal(r.problems.length, 1);
  const p = r.problems[0];
  assert.ok(p !== undefined);
  return p.reason;
}

// --- tests ---------------------------------------------------------------------------------

let hasKeygen = true;
try {
  execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
} catch (e) {
  // ssh-keygen -? exits non-zero but exists; only ENOENT means absent.
  hasKeygen = (e as NodeJS.ErrnoException).code !== 'ENOENT';
}

test('real ssh-keygen public keys parse with type, blob and comment', { skip: !hasKeygen }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-ak-'));
  try {
    const kinds: Array<[string[], string]> = [
      [['-t', 'ed25519'], 'ssh-ed25519'],
      [['-t', 'ecdsa', '-b', '256'], 'ecdsa-sha2-nistp256'],
      [['-t', 'ecdsa', '-b', '384'], 'ecdsa-sha2-nistp384'],
      [['-t', 'ecdsa', '-b', '521'], 'ecdsa-sha2-nistp521'],
      [['-t', 'rsa', '-b', '2048'], 'ssh-rsa'],
      [['-t', 'dsa'], 'ssh-dss'],
    ];
    const lines: string[] = [];
    for (const [i, [args, type]] of kinds.entries()) {
      const f = join(dir, `k${i}`);
      execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', `user${i}@host test`, '-f', f], { stdio: 'ignore' });
      const pub = readFileSync(`${f}.pub`, 'utf8').trim();
      assert.ok(pub.startsWith(`${type} `));
      lines.push(pub);
    }
    const r = parseAuthorizedKeys(lines.join('\n') + '\n', 'file');
    assert.deepEqual(r.problems, []);
    assert.equal(r.entries.length, kinds.length);
    for (const [i, e] of r.entries.entries()) {
      const [type, b64] = (lines[i] ?? '').split(' ');
      assert.equal(e.keyType, type);
      assert.ok(b64 !== undefined);
      assert.deepEqual(e.blob, Buffer.from(b64, 'base64'));
      assert.equal(e.comment, `user${i}@host test`);
      assert.equal(e.line, i + 1);
      assert.equal(e.source, 'file');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('blobs built from node:crypto keys parse', () => {
  const ec = [ecdsaBlob('P-256'), ecdsaBlob('P-384'), ecdsaBlob('P-521')];
  const rsa = rsaBlob();
  const text = [
    `ssh-ed25519 ${ED_B64} ed`,
    ...ec.map((k) => `${k.type} ${k.blob.toString('base64')}`),
    `ssh-rsa ${rsa.toString('base64')} rsa key`,
  ].join('\n');
  const r = parseAuthorizedKeys(text, 's');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(
    r.entries.map((e) => e.keyType),
    ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa'],
  );
  assert.deepEqual(r.entries[4]?.blob, rsa);
  assert.equal(r.entries[0]?.comment, 'ed');
  assert.equal(r.entries[1]?.comment, '');
});

test('blank lines, comments, leading whitespace, CRLF; line numbers count every line', () => {
  const text = `# comment\n\n   \t\n  ssh-ed25519 ${ED_B64} a\r\n\t# indented comment\r\n\tssh-ed25519 ${ED_B64} b\n`;
  const r = parseAuthorizedKeys(text, 'x');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(
    r.entries.map((e) => [e.line, e.comment]),
    [
      [4, 'a'],
      [6, 'b'],
    ],
  );
});

test('whitespace runs between type, blob and comment are accepted', () => {
  const e = onlyEntry(`ssh-ed25519  \t ${ED_B64}   my  comment  \t`);
  assert.deepEqual(e.blob, ED);
  assert.equal(e.comment, 'my  comment');
  const opt = onlyEntry(`no-pty \t  ssh-ed25519\t${ED_B64}`);
  assert.equal(opt.options.pty, false);
});

test('blob whose embedded type differs from the textual type is unusable', () => {
  assert.match(onlyProblem(`ssh-rsa ${ED_B64} c`), /does not match the blob's type "ssh-ed25519"/);
  assert.match(onlyProblem(`ecdsa-sha2-nistp256 ${ED_B64}`), /does not match/);
  const ec = ecdsaBlob('P-384');
  // Right family, wrong curve name in the type.
  assert.match(onlyProblem(`ecdsa-sha2-nistp256 ${ec.blob.toString('base64')}`), /does not match/);
});

test('bad base64 is unusable', () => {
  assert.match(onlyProblem(`ssh-ed25519 ${ED_B64.slice(0, -1)}!`), /invalid base64/);
  assert.match(onlyProblem(`ssh-ed25519 ${ED_B64.slice(0, 10)}*${ED_B64.slice(11)}`), /invalid base64/);
  // A P-256 blob is 104 bytes, so its base64 ends in exactly one '='.
  const ec = ecdsaBlob('P-256');
  const b64 = ec.blob.toString('base64');
  assert.ok(b64.endsWith('=') && !b64.endsWith('=='));
  assert.deepEqual(onlyEntry(`${ec.type} ${b64}`).blob, ec.blob);
  assert.match(onlyProblem(`${ec.type} ${b64.slice(0, -1)}`), /invalid base64/);
  // Non-zero padding bits: Buffer.from decodes this to the same bytes, but it is not canonical.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const last = b64.at(-2) ?? '';
  const bumped = alphabet[alphabet.indexOf(last) + 1] ?? '';
  const sloppy = `${b64.slice(0, -2)}${bumped}=`;
  assert.deepEqual(Buffer.from(sloppy, 'base64'), ec.blob);
  assert.match(onlyProblem(`${ec.type} ${sloppy}`), /invalid base64/);
  assert.match(onlyProblem('ssh-ed25519'), /missing key data/);
});

test('truncated blob, short key and trailing data are unusable', () => {
  const trunc = ED.subarray(0, 20);
  const padTo4 = (b: Buffer): string => b.toString('base64');
  assert.match(onlyProblem(`ssh-ed25519 ${padTo4(trunc)}`), /malformed ssh-ed25519/);
  const trailing = Buffer.concat([ED, sshString('x')]);
  assert.match(onlyProblem(`ssh-ed25519 ${padTo4(trailing)}`), /trailing data/);
  assert.match(onlyProblem(`ssh-ed25519 ${padTo4(Buffer.from([0, 0, 0, 99, 1]))}`), /truncated/);
  const rsaNoN = Buffer.concat([sshString('ssh-rsa'), sshString(Buffer.from([1, 0, 1]))]);
  assert.match(onlyProblem(`ssh-rsa ${padTo4(rsaNoN)}`), /malformed ssh-rsa/);
});

test('security-key and certificate types are recognised by their blob type', () => {
  const skEd = Buffer.concat([sshString('sk-ssh-ed25519@openssh.com'), sshString(Buffer.alloc(32, 7)), sshString('ssh:')]);
  const p256 = ecdsaBlob('P-256');
  const point = p256.blob.subarray(4 + 19 + 4 + 8 + 4);
  const skEc = Buffer.concat([
    sshString('sk-ecdsa-sha2-nistp256@openssh.com'),
    sshString('nistp256'),
    sshString(point),
    sshString('ssh:'),
  ]);
  const cert = Buffer.concat([sshString('ssh-ed25519-cert-v01@openssh.com'), sshString(Buffer.alloc(32))]);
  const r = parseAuthorizedKeys(
    [
      `sk-ssh-ed25519@openssh.com ${skEd.toString('base64')}`,
      `sk-ecdsa-sha2-nistp256@openssh.com ${skEc.toString('base64')}`,
      `ssh-ed25519-cert-v01@openssh.com ${cert.toString('base64')}`,
      `ssh-rsa-cert-v01@openssh.com ${cert.toString('base64')}`,
    ].join('\n'),
    's',
  );
  assert.deepEqual(
    r.entries.map((e) => e.keyType),
    ['sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com', 'ssh-ed25519-cert-v01@openssh.com'],
  );
  assert.equal(r.problems.length, 1);
  assert.equal(r.problems[0]?.line, 4);
  assert.match(r.problems[0]?.reason ?? '', /does not match/);
  assert.ok(isKnownKeyType('ecdsa-sha2-nistp521-cert-v01@openssh.com'));
  assert.ok(!isKnownKeyType('ssh-ed448'));
});

test('unknown key types are reported as such', () => {
  assert.match(onlyProblem(`ssh-ed448 ${ED_B64}`), /unknown key type "ssh-ed448"/);
  assert.match(onlyProblem(`no-pty ssh-foo ${ED_B64}`), /unknown key type "ssh-foo"/);
  assert.match(onlyProblem(`SSH-ED25519 ${ED_B64}`), /unsupported option "SSH-ED25519"/);
});

test('options before the key type', () => {
  const e = onlyEntry(`no-pty,command="echo a, b \\"c\\"",NO-AGENT-FORWARDING ssh-ed25519 ${ED_B64} who@where`);
  assert.equal(e.options.pty, false);
  assert.equal(e.options.agentForwarding, false);
  assert.equal(e.options.command, 'echo a, b "c"');
  assert.equal(e.comment, 'who@where');
  assert.deepEqual(e.blob, ED);
  assert.equal(onlyEntry(`ssh-ed25519 ${ED_B64}`).options.list.length, 0);
});

test('any unusable option makes the whole line unusable but not its neighbours', () => {
  const text = [
    `environment="A=b" ssh-ed25519 ${ED_B64} one`,
    `ssh-ed25519 ${ED_B64} two`,
    `no-pty,tunnel="1" ssh-ed25519 ${ED_B64} three`,
    `no-pty=x ssh-ed25519 ${ED_B64} four`,
    `command="" ssh-ed25519 ${ED_B64} five`,
    `no-pty`,
  ].join('\n');
  const r = parseAuthorizedKeys(text, '/home/a/.ssh/authorized_keys');
  assert.deepEqual(
    r.entries.map((e) => e.comment),
    ['two'],
  );
  assert.deepEqual(
    r.problems.map((p) => [p.source, p.line]),
    [
      ['/home/a/.ssh/authorized_keys', 1],
      ['/home/a/.ssh/authorized_keys', 3],
      ['/home/a/.ssh/authorized_keys', 4],
      ['/home/a/.ssh/authorized_keys', 5],
      ['/home/a/.ssh/authorized_keys', 6],
    ],
  );
  const reasons = r.problems.map((p) => p.reason);
  assert.match(reasons[0] ?? '', /unsupported option "environment"/);
  assert.match(reasons[1] ?? '', /unsupported option "tunnel"/);
  assert.match(reasons[2] ?? '', /"no-pty" does not take a value/);
  assert.match(reasons[3] ?? '', /"command" has an empty value/);
  assert.match(reasons[4] ?? '', /missing key after options/);
});

test('a quoted option value may contain spaces and the key still follows', () => {
  const e = onlyEntry(`from="10.0.0.0/8,!10.1.2.3",command="/bin/echo hello   world" ssh-ed25519 ${ED_B64}`);
  assert.equal(e.options.command, '/bin/echo hello   world');
  assert.equal(e.options.from, '10.0.0.0/8,!10.1.2.3');
  assert.match(onlyProblem(`command="unterminated ssh-ed25519 ${ED_B64}`), /missing closing quote/);
});
