// The reverse-tunnel-only (hub) account served by the real `lukko translation-server`: the
// restriction travels as options of the AUTHORIZED_KEYS text in the translation response
// (the protocol has no packets of its own for it), and lukko enforces it exactly as from
// ~/.ssh/authorized_keys. Driven by the OpenSSH client.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { cleanup, copyArgs, freePort, makeWorld, publicKey, run, ssh, sshArgs, startServer } from '../helpers/fixture.ts';
import { argsInfo, roundTrip, sshBackground, waitPort } from '../helpers/forward.ts';
import { useTranslationServer } from '../helpers/translation.ts';

let world: World;
let server: Server;
let translation: { proc: ChildProcess; out: () => string } | undefined;
let echo: net.Server;
let echoPort: number;
let hubPort: number;
let hubHome: string;
const background: ChildProcess[] = [];
const PURPOSE = 'this account only holds a reverse tunnel';

before(async () => {
  world = makeWorld();
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
  hubPort = await freePort();
  // an account in no /etc/passwd: only the translation server knows it
  const id = world.users.alice!.uid + 8;
  hubHome = join(world.dir, 'ts-home', 'hub');
  mkdirSync(hubHome, { recursive: true });
  chownSync(hubHome, id, id);
  translation = await useTranslationServer(
    world,
    `
[hub]
uid = ${id}
gid = ${id}
home = ${hubHome}
authorized_keys[] = restrict,port-forwarding,permitlisten="localhost:${hubPort}",permitopen="none",command="echo ${PURPOSE}" ${publicKey(world.keys.ed25519!)}
no_home_authorized_keys = true
`,
  );
  server = await startServer(world);
});

after(async () => {
  for (const p of background) p.kill();
  await server?.stop();
  translation?.proc.kill('SIGTERM');
  echo?.close();
  if (world) cleanup(world);
});

describe('a hub account from the translation server', () => {
  test('ssh -N -R on its port works', async () => {
    const { proc, stderr } = await sshBackground(server, world.keys.ed25519!, 'hub', ['-o', 'ExitOnForwardFailure=yes', '-R', `localhost:${hubPort}:127.0.0.1:${echoPort}`]);
    background.push(proc);
    await waitPort(hubPort);
    const data = Buffer.from('through the hub');
    assert.deepEqual(await roundTrip({ port: hubPort }, data), data);
    assert.doesNotMatch(stderr(), /failed/);
  });

  test('any other port, -L and -W are refused, and the log names the rule', async () => {
    const other = await run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'hub', ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', `localhost:${await freePort()}:127.0.0.1:${echoPort}`])]);
    assert.equal(other.code, 255);
    assert.match(other.stderr, /remote port forwarding failed/);
    const w = await run('ssh', [...argsInfo(server, world.keys.ed25519, 'hub', ['-W', `127.0.0.1:${echoPort}`])], { input: 'x' });
    assert.equal(w.code, 255);
    assert.match(w.stderr, /administratively prohibited/);
    const refused = server.events().filter((e) => e.msg === 'forwarding refused' && e.user === 'hub');
    assert.ok(refused.some((e) => String(e.forward).startsWith('tcpip-forward') && /permitlisten="localhost:\d+"/.test(String(e.reason))), JSON.stringify(refused));
    assert.ok(refused.some((e) => String(e.forward).startsWith('direct-tcpip') && /permitopen="none"/.test(String(e.reason))), JSON.stringify(refused));
  });

  test('a shell, an exec, sftp and scp reach only the forced command', async () => {
    const exec = await ssh(server, world.keys.ed25519, 'hub', ['cat /etc/passwd']);
    assert.equal(exec.stdout, `${PURPOSE}\n`);
    const shell = await ssh(server, world.keys.ed25519, 'hub', [], { input: 'id\n' });
    assert.equal(shell.stdout, `${PURPOSE}\n`);
    const local = join(world.dir, 'upload.txt');
    writeFileSync(local, 'payload');
    const copy = copyArgs(server.port, world.keys.ed25519!);
    const sftp = await run('sftp', [...copy, '-b', '-', 'hub@127.0.0.1'], { input: `put ${local} ${hubHome}/via-sftp\n` });
    assert.notEqual(sftp.code, 0);
    const scp = await run('scp', ['-O', ...copy, local, `hub@127.0.0.1:${hubHome}/via-scp`]);
    assert.notEqual(scp.code, 0);
    assert.equal(existsSync(join(hubHome, 'via-sftp')), false);
    assert.equal(existsSync(join(hubHome, 'via-scp')), false);
    const started = server.events().filter((e) => e.msg === 'session start' && e.user === 'hub');
    assert.ok(started.length >= 4 && started.every((e) => e.forced === true), JSON.stringify(started));
  });
});
