import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HostKeyError, loadHostKeys } from '../../src/ssh/host-keys.ts';
import { writeMissingHostKeys } from '../../src/ssh/keygen.ts';

test('keygen writes OpenSSH-format keys that ssh-keygen reads, and never overwrites', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-keys-'));
  const written = writeMissingHostKeys(dir, ['ed25519', 'ecdsa']);
  assert.deepEqual(written.map((p) => p.slice(dir.length + 1)), ['host_ed25519_key', 'host_ecdsa_key']);
  const ed = join(dir, 'host_ed25519_key');
  assert.match(readFileSync(ed, 'utf8'), /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  assert.equal(statSync(ed).mode & 0o777, 0o600);
  assert.match(execFileSync('ssh-keygen', ['-y', '-f', ed], { encoding: 'utf8' }), /^ssh-ed25519 /);
  const before = readFileSync(ed);
  assert.deepEqual(writeMissingHostKeys(dir, ['ed25519']), []);
  assert.deepEqual(readFileSync(ed), before);
  const keys = loadHostKeys(dir, []);
  assert.deepEqual(keys.map((k) => k.type), ['ssh-ed25519', 'ecdsa-sha2-nistp256']);
});

test('no host key is a configuration error, never a made-up key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-keys-'));
  assert.throws(() => loadHostKeys(dir, []), HostKeyError);
});

test('an encrypted or broken key, or a missing listener key file, is an error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-keys-'));
  const enc = join(dir, 'enc');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', enc]);
  assert.throws(() => loadHostKeys(dir, [enc]), (e: Error) => e instanceof HostKeyError && e.message.includes(enc));
  writeFileSync(join(dir, 'host_ed25519_key'), 'garbage');
  assert.throws(() => loadHostKeys(dir, []), /host_ed25519_key/);
  assert.throws(() => loadHostKeys(dir, [join(dir, 'missing')]), /missing/);
});

test("a listener's host_key_file replaces the default keys, in the order given", () => {
  const dir = mkdtempSync(join(tmpdir(), 'lukko-keys-'));
  writeMissingHostKeys(dir, ['ed25519']);
  const own = join(dir, 'listener-ecdsa');
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '384', '-N', '', '-f', own]);
  const keys = loadHostKeys(dir, [own]);
  assert.deepEqual(keys.map((k) => [k.path, k.type]), [[own, 'ecdsa-sha2-nistp384']]);
});
