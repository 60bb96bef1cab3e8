// lukko with `lukko translation-server` as a separate process over a real AF_UNIX socket,
// driven by the OpenSSH client: accounts that exist only in the translation server's user
// file, passwords, SFTP-only accounts, what the child process gets, password-less logins,
// an abstract socket, and isolation lukko cannot enforce here (cgroup limits without systemd).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/translation-server/password-hash.ts';
import type { Server, World } from '../helpers/fixture.ts';
import { cleanup, copyArgs, makeWorld, publicKey, ROOT, run, settled, ssh, sshArgs, startServer } from '../helpers/fixture.ts';
import { sshPassword, startTranslationServer } from '../helpers/translation.ts';

const PASSWORD = 'correct horse battery staple';
let world: World;
let server: Server;
let translation: { proc: ChildProcess; out: () => string } | undefined;
let ids: { uid: number; gid: number; extra: number; g1: number };
const homes: Record<string, string> = {};

function home(name: string, uid: number, gid: number): string {
  const dir = join(world.dir, 'ts-home', name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, uid, gid);
  homes[name] = dir;
  return dir;
}

async function usersIni(): Promise<string> {
  const key = publicKey(world.keys.ed25519!);
  const hash = await hashPassword(PASSWORD);
  const { uid, gid, g1, extra } = ids;
  return `
[carol]
uid = ${uid}
gid = ${gid}
groups = ${g1},${extra}
home = ${home('carol', uid, gid)}
shell = /bin/bash
password = ${hash}
authorized_keys[] = ${key}
no_home_authorized_keys = true
setenv[] = LUKKO_FROM=translation
setenv[] = "LANG=C.UTF-8"
umask = 027
rlimits = n321

[sftp.only]
uid = ${uid}
gid = ${gid}
home = ${home('sftp.only', uid, gid)}
authorized_keys[] = ${key}
sftp_only = true

[sftp.only:sftp]
execute = /usr/lib/openssh/sftp-server

[sftp.only:rsync]
execute = /usr/bin/rsync

[sftp.only:git-upload-pack]

[open]
uid = ${uid}
gid = ${gid}
home = ${home('open', uid, gid)}
shell = /bin/bash
no_password = true

[caged]
uid = ${uid}
gid = ${gid}
home = ${home('caged', uid, gid)}
authorized_keys[] = ${key}
pid_namespace = true
cgroup = caged
cgroup_set[] = pids.max=10
`;
}

/** ssh options for programs that run ssh themselves (rsync -e, GIT_SSH_COMMAND), without the destination. */
function sshArgsFor(port: number): string[] {
  return sshArgs(port, world.keys.ed25519, 'x').slice(0, -1);
}

function setConfig(extra: string, address: string): void {
  writeFileSync(world.configPath, `translation_server "${address}"\nlistener {\n  bind "127.0.0.1:22"\n${extra}}\n`);
}

before(async () => {
  world = makeWorld();
  const alice = world.users.alice!;
  // An account that is in no /etc/passwd: uid, gid and groups only the translation server knows.
  ids = { uid: alice.uid + 8, gid: alice.uid + 8, g1: alice.groups[0]!, extra: alice.uid + 9 };
  const users = join(world.dir, 'users.ini');
  writeFileSync(users, await usersIni(), { mode: 0o600 });
  const socket = join(world.dir, 'translation.socket');
  translation = await startTranslationServer(users, socket);
  setConfig('', socket);
  server = await startServer(world);
});

after(async () => {
  await server?.stop();
  translation?.proc.kill('SIGTERM');
  if (world) cleanup(world);
});

describe('accounts from the translation server', () => {
  test('public-key login for a user that exists only in the translation server\'s file', async () => {
    const hostPasswd = readFileSync('/etc/passwd', 'utf8');
    assert.equal(hostPasswd.includes('carol:'), false);
    // The session sees itself in a private /etc/passwd (so whoami and sftp-server work); the
    // host's file is untouched.
    const r = await ssh(server, world.keys.ed25519, 'carol', ['id -u; id -g; id -G; pwd; echo $HOME; whoami']);
    assert.equal(r.code, 0, r.stderr);
    const [uid, gid, groups, pwd, homeVar, who] = r.stdout.trim().split('\n');
    assert.equal(Number(uid), ids.uid);
    assert.equal(Number(gid), ids.gid);
    assert.deepEqual(groups!.split(' ').map(Number).sort(), [ids.gid, ids.g1, ids.extra].sort());
    assert.equal(pwd, homes.carol);
    assert.equal(homeVar, homes.carol);
    assert.equal(who, 'carol');
    assert.equal(readFileSync('/etc/passwd', 'utf8'), hostPasswd);
  });

  test('SETENV, UMASK and RLIMITS from the response are what the child sees; lukko\'s own variables stay', async () => {
    const r = await ssh(server, world.keys.ed25519, 'carol', ['echo $LUKKO_FROM; echo $LANG; umask; ulimit -n; echo $USER; echo ${SSH_CONNECTION%% *}']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['translation', 'C.UTF-8', '0027', '321', 'carol', '127.0.0.1']);
  });

  test('a file the child writes gets the umask and the translation uid', async () => {
    const r = await ssh(server, world.keys.ed25519, 'carol', ['touch made && stat -c "%a %u" made']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `640 ${ids.uid}`);
  });

  test('password login: right and wrong; the method list names password', async () => {
    const good = await sshPassword(server, world.dir, 'carol', PASSWORD, ['echo in']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, 'in\n');
    const bad = await sshPassword(server, world.dir, 'carol', 'wrong', ['echo in']);
    assert.equal(bad.code, 255);
    assert.match(bad.stderr, /carol@127\.0\.0\.1: Permission denied \(publickey,password\)\./);
  });

  test('an unknown user: the same method list and the same password-failure timing as a known one', async () => {
    const py = (user: string, method: string, arg?: string) =>
      run('/usr/bin/python3', [join(ROOT, 'test/helpers/paramiko_auth.py'), '127.0.0.1', String(server.port), user, method, ...(arg ? [arg] : [])]).then(
        (r) => JSON.parse(r.stdout) as { ok: boolean; allowed: string[] | null; ms: number; error: string | null },
      );
    const known = await py('carol', 'none');
    const unknown = await py('nobody-here', 'none');
    assert.deepEqual(known.allowed, ['publickey', 'password']);
    assert.deepEqual(unknown.allowed, ['publickey', 'password']);
    for (const user of ['carol', 'nobody-here']) {
      const r = await py(user, 'password', 'wrong');
      assert.equal(r.ok, false);
      assert.ok(r.ms >= 100, `${user}: answered after ${r.ms} ms`);
    }
    const events = server.events().filter((e) => e.msg === 'authentication failed' && e.method === 'password');
    assert.ok(events.some((e) => /status 404/.test(String(e.reason))), 'the log says which: no such user');
    assert.ok(events.some((e) => /status 403/.test(String(e.reason))), 'the log says which: wrong password');
  });

  test('NO_PASSWORD: logged in without a key or a password', async () => {
    const r = await ssh(server, undefined, 'open', ['echo free']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'free\n');
  });

  test('isolation the spawner cannot enforce refuses the login, naming the packets (cgroup limits without a systemd unit)', async () => {
    const r = await ssh(server, world.keys.ed25519, 'caged', ['true']);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Configuration server failed/);
    await settled(server);
    const refusal = server.events().find((e) => typeof e.msg === 'string' && (e.msg as string).startsWith('login refused'));
    assert.ok(refusal, server.output());
    assert.deepEqual(refusal.packets, ['CGROUP', 'CGROUP_SET']);
  });
});

describe('SFTP-only accounts', () => {
  test('sftp works; exec and shell are refused', async () => {
    const local = join(world.dir, 'payload');
    writeFileSync(local, 'sftp payload\n');
    const r = await run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'sftp.only@127.0.0.1'], { input: `put ${local} up.txt\nls\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(homes['sftp.only']!, 'up.txt'), 'utf8'), 'sftp payload\n');
    const exec = await ssh(server, world.keys.ed25519, 'sftp.only', ['ls']);
    assert.equal(exec.code, 255);
    assert.match(exec.stderr, /exec request failed on channel 0/);
    const shell = await ssh(server, world.keys.ed25519, 'sftp.only', [], { extra: ['-tt'], input: 'exit\n' });
    assert.notEqual(shell.code, 0);
    assert.match(shell.stderr, /shell request failed|PTY allocation request failed/);
  });

  test('with exec_reject_stderr the client is told on stderr', async () => {
    setConfig('  exec_reject_stderr yes\n', join(world.dir, 'translation.socket'));
    try {
      const exec = await ssh(server, world.keys.ed25519, 'sftp.only', ['ls']);
      assert.equal(exec.code, 255);
      assert.equal(exec.stderr.replace(/\r/g, ''), 'Shell access denied (SFTP only).\n');
      const r = await run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'sftp.only@127.0.0.1'], { input: 'ls\n' });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      setConfig('', join(world.dir, 'translation.socket'));
    }
  });
});

describe('partitions: the programs an SFTP-only account may still run', () => {
  test('the sftp partition\'s EXECUTE is what runs for sftp', async () => {
    const r = await run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'sftp.only@127.0.0.1'], { input: 'pwd\n' });
    assert.equal(r.code, 0, r.stderr);
    await settled(server);
    const start = server.events().filter((e) => e.msg === 'session start' && e.request === 'program');
    assert.ok(start.some((e) => e.command === 'internal-sftp'), server.output().slice(-2000));
  });

  test('rsync --server runs from the rsync partition; other commands stay refused', async () => {
    const src = join(world.dir, 'rsync-src');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'rsynced\n');
    const e = ['ssh', ...sshArgsFor(server.port)].join(' ');
    const r = await run('rsync', ['-a', '-e', e, `${src}/`, 'sftp.only@127.0.0.1:backup/']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(homes['sftp.only']!, 'backup', 'a.txt'), 'utf8'), 'rsynced\n');
    const other = await ssh(server, world.keys.ed25519, 'sftp.only', ['rsync --version']);
    assert.equal(other.code, 255);
  });

  test('git clone through git-upload-pack from the git partition (default program); receive-pack has no partition', async () => {
    const repo = join(homes['sftp.only']!, 'repo.git');
    await run('git', ['init', '-q', '--bare', repo]);
    const work = join(world.dir, 'git-work');
    await run('git', ['init', '-q', work]);
    await run('git', ['-C', work, '-c', 'user.email=t@e', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'first']);
    await run('git', ['-C', work, 'push', '-q', repo, 'HEAD:refs/heads/main']);
    await run('chown', ['-R', `${ids.uid}:${ids.gid}`, repo]);
    const env = { ...process.env, GIT_SSH_COMMAND: ['ssh', ...sshArgsFor(server.port)].join(' ') };
    const clone = await run('git', ['clone', '-q', 'sftp.only@127.0.0.1:repo.git', join(world.dir, 'cloned')], { env });
    assert.equal(clone.code, 0, clone.stderr);
    const log = await run('git', ['-C', join(world.dir, 'cloned'), 'log', '--all', '--format=%s']);
    assert.equal(log.stdout, 'first\n');
    const push = await run('git', ['-C', join(world.dir, 'cloned'), 'push', '-q', 'origin', 'HEAD:refs/heads/other'], { env });
    assert.notEqual(push.code, 0);
  });
});

describe('an abstract socket', () => {
  test('translation_server "@name" reaches a server listening on that abstract name', async () => {
    const name = `@lukko-test-${process.pid}`;
    const second = await startTranslationServer(join(world.dir, 'users.ini'), name);
    setConfig('', name);
    try {
      const r = await ssh(server, world.keys.ed25519, 'carol', ['id -u']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(Number(r.stdout), ids.uid);
      assert.match(second.out(), /carol/);
    } finally {
      setConfig('', join(world.dir, 'translation.socket'));
      second.proc.kill('SIGTERM');
    }
  });
});
