// Forwarding through lukko with the real OpenSSH client: -L, -W (and ProxyJump through it),
// -R with port 0 and to a Unix socket, the reverse-tunnel-only hub account, permitopen,
// agent forwarding, many connections at once and a stalled reader.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { roundTrip, waitPort, argsInfo as sharedArgsInfo, sshBackground as sharedBackground, sleep } from '../helpers/forward.ts';
import { authorize, cleanup, copyArgs, freePort, keyLine, makeWorld, run, ssh, sshArgs, startServer } from '../helpers/fixture.ts';

let world: World;
let server: Server;
let echo: net.Server;
let echoPort: number;
const background: ChildProcess[] = [];

const argsInfo = (key: string | undefined, user: string, extra: string[]) => sharedArgsInfo(server, key, user, extra);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** ssh -N in the background (helpers/forward.ts), ended with the file. */
async function sshBackground(key: string, user: string, extra: string[], ready?: RegExp): Promise<{ proc: ChildProcess; stderr: () => string }> {
  const bg = await sharedBackground(server, key, user, extra, ready);
  background.push(bg.proc);
  return bg;
}

before(async () => {
  world = makeWorld();
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
  authorize(world, 'alice', [keyLine(world, 'ed25519')]);
  server = await startServer(world);
});

after(async () => {
  for (const p of background) p.kill();
  await server?.stop();
  echo?.close();
  if (world) cleanup(world);
});

describe('local forwarding', () => {
  test('ssh -W moves 50 MB unchanged', async () => {
    const data = randomBytes(50 * 1024 * 1024);
    const r = await new Promise<Buffer>((resolve) => {
      const p = spawn('ssh', [...sshArgs(server.port, world.keys.ed25519, 'alice', ['-W', `127.0.0.1:${echoPort}`])], { stdio: ['pipe', 'pipe', 'inherit'] });
      const out: Buffer[] = [];
      let n = 0;
      p.stdout!.on('data', (d: Buffer) => {
        out.push(d);
        n += d.length;
        if (n >= data.length) p.stdin!.end();
      });
      p.on('close', () => resolve(Buffer.concat(out)));
      p.stdin!.write(data);
    });
    assert.equal(r.length, data.length);
    assert.equal(sha(r), sha(data));
  });

  test('ssh -L moves 50 MB unchanged', async () => {
    const lport = await freePort();
    await sshBackground(world.keys.ed25519!, 'alice', ['-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${lport}:127.0.0.1:${echoPort}`]);
    await waitPort(lport);
    const data = randomBytes(50 * 1024 * 1024);
    const back = await roundTrip({ port: lport }, data);
    assert.equal(back.length, data.length);
    assert.equal(sha(back), sha(data));
  });

  test('ssh -L: 200 connections at once through one session all complete', async () => {
    const lport = await freePort();
    await sshBackground(world.keys.ed25519!, 'alice', ['-L', `127.0.0.1:${lport}:127.0.0.1:${echoPort}`]);
    await waitPort(lport);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const data = Buffer.from(`connection ${i} `.repeat(200));
        return roundTrip({ port: lport }, data).then((back) => back.equals(data));
      }),
    );
    assert.equal(results.filter(Boolean).length, 200);
  });

  test('ProxyJump through lukko (-W under the hood)', async () => {
    const jump = ['ssh', ...sshArgs(server.port, world.keys.ed25519, 'alice', ['-W', '%h:%p'])].join(' ');
    const r = await ssh(server, world.keys.ed25519, 'alice', ['echo hopped'], { extra: ['-o', `ProxyCommand=${jump}`] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hopped\n');
  });
});

describe('remote forwarding', () => {
  test('ssh -R 0: the allocated port is printed and reaches the client\'s service', async () => {
    const { stderr } = await sshBackground(world.keys.ed25519!, 'alice', ['-R', `0:127.0.0.1:${echoPort}`], /Allocated port \d+/);
    const port = Number(/Allocated port (\d+)/.exec(stderr())![1]);
    const data = Buffer.from('through the reverse tunnel');
    assert.deepEqual(await roundTrip({ port }, data), data);
  });

  test('ssh -R to a Unix socket: the socket belongs to the user and works', async () => {
    const path = join(world.users.alice!.home, 'fwd.sock');
    await sshBackground(world.keys.ed25519!, 'alice', ['-R', `${path}:127.0.0.1:${echoPort}`]);
    for (let i = 0; i < 200 && !existsSync(path); i++) await sleep(25);
    assert.equal(statSync(path).uid, world.users.alice!.uid);
    assert.ok(statSync(path).isSocket());
    const data = Buffer.from('via a unix socket');
    assert.deepEqual(await roundTrip({ path }, data), data);
  });
});

describe('policy', () => {
  test('the reverse-tunnel-only account: -R on its port only, no -L, the forced command for everything else', async () => {
    const hubPort = await freePort();
    authorize(world, 'bob', [
      keyLine(world, 'ed25519', `restrict,port-forwarding,permitlisten="localhost:${hubPort}",permitopen="none",command="echo this account only holds a reverse tunnel"`),
    ]);
    const { stderr } = await sshBackground(world.keys.ed25519!, 'bob', ['-o', 'ExitOnForwardFailure=yes', '-R', `localhost:${hubPort}:127.0.0.1:${echoPort}`]);
    await waitPort(hubPort);
    const data = Buffer.from('hub');
    assert.deepEqual(await roundTrip({ port: hubPort }, data), data);
    assert.doesNotMatch(stderr(), /failed/);

    const other = await run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'bob', ['-N', '-o', 'ExitOnForwardFailure=yes', '-R', `localhost:${await freePort()}:127.0.0.1:${echoPort}`])]);
    assert.equal(other.code, 255);
    assert.match(other.stderr, /remote port forwarding failed/);
    const local = await run('ssh', [...argsInfo(world.keys.ed25519, 'bob', ['-W', `127.0.0.1:${echoPort}`])], { input: 'x' });
    assert.equal(local.code, 255);
    assert.match(local.stderr, /administratively prohibited/);
    const exec = await ssh(server, world.keys.ed25519, 'bob', ['cat /etc/passwd']);
    assert.equal(exec.stdout, 'this account only holds a reverse tunnel\n');
    const events = server.events().filter((e) => e.msg === 'forwarding refused');
    assert.ok(events.some((e) => /permitopen none|not matched/.test(String(e.reason))), JSON.stringify(events));
  });

  test('the reverse-tunnel-only account: sftp and scp (both protocols) reach only the forced command', async () => {
    const hubPort = await freePort();
    const home = world.users.bob!.home;
    const trace = join(home, 'forced.log');
    authorize(world, 'bob', [
      keyLine(world, 'ed25519', `restrict,port-forwarding,permitlisten="localhost:${hubPort}",permitopen="none",command="echo \\"ran for: $SSH_ORIGINAL_COMMAND\\" >> ${trace}; echo this account only holds a reverse tunnel"`),
    ]);
    const local = join(world.dir, 'upload.txt');
    writeFileSync(local, 'payload');
    const copy = copyArgs(server.port, world.keys.ed25519!);
    const sftp = await run('sftp', [...copy, '-b', '-', 'bob@127.0.0.1'], { input: `put ${local} ${home}/via-sftp\nls\n` });
    assert.notEqual(sftp.code, 0);
    const scp = await run('scp', [...copy, local, `bob@127.0.0.1:${home}/via-scp`]);
    assert.notEqual(scp.code, 0);
    const scpLegacy = await run('scp', ['-O', ...copy, local, `bob@127.0.0.1:${home}/via-scp-legacy`]);
    assert.notEqual(scpLegacy.code, 0);
    for (const f of ['via-sftp', 'via-scp', 'via-scp-legacy']) assert.equal(existsSync(join(home, f)), false, f);
    const ran = readFileSync(trace, 'utf8').trim().split('\n');
    assert.equal(ran.length, 3, ran.join('\n'));
    assert.match(ran[2]!, /^ran for: scp .*-t/);
  });

  test('no-port-forwarding: -W and -R refused, the connection goes on, and the log names the key line and option', async () => {
    authorize(world, 'bob', [keyLine(world, 'ed25519', 'no-port-forwarding')]);
    const since = server.events().length;
    const r = await run('ssh', [...argsInfo(world.keys.ed25519, 'bob', ['-o', 'ExitOnForwardFailure=no', '-R', `0:127.0.0.1:${echoPort}`]), 'echo still here'], {});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'still here\n');
    assert.match(r.stderr, /remote port forwarding failed/);
    const w = await run('ssh', [...argsInfo(world.keys.ed25519, 'bob', ['-W', `127.0.0.1:${echoPort}`])], { input: 'x' });
    assert.match(w.stderr, /administratively prohibited/);
    const refused = server.events().slice(since).filter((e) => e.msg === 'forwarding refused' && e.user === 'bob');
    for (const what of ['tcpip-forward', 'direct-tcpip']) {
      const e = refused.find((x) => String(x.forward).startsWith(what));
      assert.match(String(e?.reason), /^port-forwarding off by .*authorized_keys:1 no-port-forwarding$/, JSON.stringify(refused));
    }
  });

  test('permitopen allows exactly the listed destinations', async () => {
    const otherEcho = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => otherEcho.listen(0, '127.0.0.1', r));
    const otherPort = (otherEcho.address() as net.AddressInfo).port;
    try {
      authorize(world, 'bob', [keyLine(world, 'ed25519', `permitopen="127.0.0.1:${echoPort}"`)]);
      const allowed = await run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'bob', ['-W', `127.0.0.1:${echoPort}`])], { input: 'yes' });
      assert.equal(allowed.stdout, 'yes');
      const refused = await run('ssh', [...argsInfo(world.keys.ed25519, 'bob', ['-W', `127.0.0.1:${otherPort}`])], { input: 'no' });
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /administratively prohibited/);
      const byName = await run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'bob', ['-W', `localhost:${echoPort}`])], { input: 'no' });
      assert.equal(byName.code, 255, 'permitopen compares the host as written, like OpenSSH');
    } finally {
      otherEcho.close();
    }
  });
});

/** A client-side ssh-agent on `name` holding the test key; its environment and the key's fingerprint. */
async function agentWithKey(name: string): Promise<{ env: NodeJS.ProcessEnv; fp: string }> {
  const agentSock = join(world.dir, name);
  background.push(spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' }));
  for (let i = 0; i < 200 && !existsSync(agentSock); i++) await sleep(25);
  const env = { ...process.env, SSH_AUTH_SOCK: agentSock };
  assert.equal((await run('ssh-add', [world.keys.ed25519!], { env })).code, 0);
  const fp = (await run('ssh-keygen', ['-lf', `${world.keys.ed25519}.pub`])).stdout.split(' ')[1]!;
  return { env, fp };
}

describe('agent forwarding', () => {
  test('ssh -A: ssh-add -l inside the session lists the client\'s key; the socket goes with the connection', async () => {
    const { env, fp } = await agentWithKey('agent.sock');
    const r = await run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'alice', ['-A']), 'ssh-add -l; echo "$SSH_AUTH_SOCK"; stat -c %U:%a "$(dirname "$SSH_AUTH_SOCK")"'], { env });
    assert.equal(r.code, 0, r.stderr);
    const [list, sock, owner] = r.stdout.trim().split('\n');
    assert.match(list!, new RegExp(fp.replace(/[+/]/g, '\\$&')));
    assert.equal(owner, 'alice:700');
    await sleep(300);
    assert.equal(existsSync(sock!), false, 'the agent socket is gone with the connection');
    const restricted = readFileSync(join(world.users.alice!.home, '.ssh', 'authorized_keys'), 'utf8');
    assert.ok(restricted.length > 0);
  });

  test('restrict,agent-forwarding gives agent forwarding back (as in OpenSSH); restrict alone refuses it and the log names the rule', async () => {
    const { env, fp } = await agentWithKey('agent2.sock');

    authorize(world, 'bob', [keyLine(world, 'ed25519', 'restrict,agent-forwarding')]);
    const allowed = await run('ssh', [...sshArgs(server.port, world.keys.ed25519, 'bob', ['-A']), 'ssh-add -l'], { env });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.ok(allowed.stdout.includes(fp), allowed.stdout);

    authorize(world, 'bob', [keyLine(world, 'ed25519', 'restrict')]);
    const refused = await run('ssh', [...argsInfo(world.keys.ed25519, 'bob', ['-A']), 'echo "[$SSH_AUTH_SOCK]"; ssh-add -l'], { env });
    assert.match(refused.stdout, /^\[\]\n/, 'no SSH_AUTH_SOCK in the session');
    assert.notEqual(refused.code, 0, 'ssh-add finds no agent');
    const log = server.events().filter((e) => e.msg === 'agent forwarding refused');
    assert.ok(log.some((e) => /authorized_keys:1 restrict/.test(String(e.reason))), JSON.stringify(log));
  });
});
