// The clients people use besides OpenSSH: Dropbear's dbclient, PuTTY's plink, paramiko
// and Ruby's net-ssh (all from Debian, installed by scripts/setup.sh). Each logs in with
// a key and runs a command, against lukko's algorithm policy.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { authorize, cleanup, clientKey, keyLine, makeWorld, publicKey, run, startServer } from '../helpers/fixture.ts';

let world: World;
let server: Server;
let pemKey: string;

before(async () => {
  world = makeWorld();
  pemKey = join(world.dir, 'client', 'pem-ecdsa');
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-m', 'PEM', '-N', '', '-f', pemKey]);
  const rsa = clientKey(join(world.dir, 'client'), 'rsa', 'rsa', 3072);
  world.keys.rsa = rsa;
  authorize(world, 'alice', [keyLine(world, 'ed25519'), publicKey(pemKey), publicKey(rsa)]);
  server = await startServer(world, { logLevel: 'info' });
});

after(async () => {
  await server?.stop();
  if (world) cleanup(world);
});

test('Dropbear dbclient', async () => {
  const key = join(world.dir, 'client', 'dropbear-key');
  execFileSync('dropbearconvert', ['openssh', 'dropbear', world.keys.ed25519!, key], { stdio: 'ignore' });
  const r = await run('dbclient', ['-y', '-y', '-i', key, '-p', String(server.port), 'alice@127.0.0.1', 'echo dropbear-$USER'], { input: '' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'dropbear-alice\n');
});

test('PuTTY plink', async () => {
  const ppk = join(world.dir, 'client', 'key.ppk');
  execFileSync('puttygen', [world.keys.ed25519!, '-O', 'private', '-o', ppk]);
  const fp = execFileSync('ssh-keygen', ['-lf', join(world.configDir, 'host_ed25519_key.pub')], { encoding: 'utf8' }).split(' ')[1]!;
  const r = await run('plink', ['-batch', '-ssh', '-P', String(server.port), '-i', ppk, '-hostkey', fp, 'alice@127.0.0.1', 'echo plink-$USER'], { input: '' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'plink-alice');
});

test('paramiko', async () => {
  const script = join(world.dir, 'paramiko_exec.py');
  writeFileSync(
    script,
    [
      'import sys, paramiko',
      'c = paramiko.SSHClient()',
      'c.set_missing_host_key_policy(paramiko.AutoAddPolicy())',
      'c.connect("127.0.0.1", port=int(sys.argv[1]), username="alice", key_filename=sys.argv[2], look_for_keys=False, allow_agent=False)',
      '_, out, _ = c.exec_command("echo paramiko-$USER")',
      'print(out.read().decode().strip())',
    ].join('\n'),
  );
  for (const key of [world.keys.ed25519!, world.keys.rsa!]) {
    const r = await run('/usr/bin/python3', [script, String(server.port), key]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'paramiko-alice');
  }
});

test('Ruby net-ssh', async () => {
  const code = `require 'net/ssh'; Net::SSH.start('127.0.0.1', 'alice', port: ${server.port}, keys: ['${pemKey}'], keys_only: true, verify_host_key: :never, non_interactive: true) { |s| puts s.exec!('echo netssh-$USER') }`;
  const r = await run('ruby', ['-e', code]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'netssh-alice');
});
