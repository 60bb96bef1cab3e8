// Session isolation with real namespaces: lukko (as root) with `lukko translation-server`
// and a users.ini holding one account per isolation profile, driven by the OpenSSH client.
// Each test shows what the user's processes see from inside their container.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Server, World } from '../helpers/fixture.ts';
import { childExits, cleanup, copyArgs, makeWorld, publicKey, run, settled, ssh, startServer } from '../helpers/fixture.ts';
import { useTranslationServer } from '../helpers/translation.ts';

const asRoot = process.getuid?.() === 0;
const skip = !asRoot ? 'needs root for namespaces' : !existsSync('/bin/busybox') ? 'needs busybox-static (scripts/setup.sh)' : false;

let world: World;
let server: Server;
let translation: ChildProcess | undefined;
let ids: { uid: number; gid: number };
const homes: Record<string, string> = {};
const NETNS = `lukko-iso-${process.pid}`;

function home(name: string): string {
  const dir = join(world.dir, 'ts-home', name);
  mkdirSync(dir, { recursive: true });
  chownSync(dir, ids.uid, ids.gid);
  homes[name] = dir;
  return dir;
}

/** A home whose only programs are a static busybox (sh, ls, cat, id …) in ~/bin. */
function busyboxHome(name: string): string {
  const dir = home(name);
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  copyFileSync('/bin/busybox', join(bin, 'busybox'));
  chmodSync(join(bin, 'busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'id', 'pwd', 'touch', 'echo']) linkSync(join(bin, 'busybox'), join(bin, applet));
  return dir;
}

function usersIni(): string {
  const key = publicKey(world.keys.ed25519!);
  const second = publicKey(world.keys.second!);
  const { uid, gid } = ids;
  const account = (name: string, h: string, extra: string) => `
[${name}]
uid = ${uid}
gid = ${gid}
home = ${h}
shell = /bin/bash
authorized_keys[] = ${key}
${extra}`;
  const tmproot = busyboxHome('tmproot');
  return [
    // tmpfs root with nothing but the home in it
    `
[tmproot]
uid = ${uid}
gid = ${gid}
home = ${tmproot}
shell = /home/tmproot/bin/sh
authorized_keys[] = ${key}
setenv[] = PATH=/home/tmproot/bin
mount_root_tmpfs = true
mount_home = /home/tmproot
`,
    account('pidns', home('pidns'), 'pid_namespace = true\nmount_proc = true\numask = 027\nrlimits = n123 u300\n'),
    account('netns', home('netns'), 'network_namespace = true\n'),
    account('netnsnamed', home('netnsnamed'), `network_namespace_name = ${NETNS}\n`),
    account('userns', home('userns'), 'user_namespace = true\nmapped_uid = 1000\n'),
    // the same account through two keys: one of them home-read-only
    `
[rohome]
uid = ${uid}
gid = ${gid}
home = ${home('rohome')}
shell = /bin/bash
authorized_keys[] = home-read-only ${key}
authorized_keys[] = ${second}
`,
    // the seed case: a jail that holds only the user's files, SFTP only
    `
[sftpjail]
uid = ${uid}
gid = ${gid}
home = ${home('sftpjail')}
authorized_keys[] = ${key}
sftp_only = true
mount_root_tmpfs = true
mount_home = /home/sftpjail

[sftpjail:sftp]
execute = /usr/lib/openssh/sftp-server
`,
    account('utsipc', home('utsipc'), 'uts_hostname = lukko-box\nipc_namespace = true\ncgroup_namespace = true\n'),
    `
[chrooted]
uid = ${uid}
gid = ${gid}
home = ${busyboxHome('chrooted')}
shell = /bin/sh
authorized_keys[] = ${key}
setenv[] = PATH=/bin
chroot = ${homes.chrooted}
`,
    account('missing', home('missing'), 'bind_mount[] = /nonexistent-lukko-source /data\n'),
    account('optional', home('optional'), 'mount_root_tmpfs = true\nmount_home = /home/optional\nbind_mount_exec[] = /usr /usr\nbind_mount[] = /nonexistent-lukko-source /data optional\nsymlink[] = usr/bin /bin\nsymlink[] = usr/lib /lib\nsymlink[] = usr/lib64 /lib64\nwrite_file[] = /motd hello from the container\nmount_tmp_tmpfs = size=1M\n'),
  ].join('');
}

const lines = (s: string): string[] => s.trim().split('\n').filter((l) => l !== '');

describe('session isolation', { skip }, () => {
  before(async () => {
    world = makeWorld({ keyTypes: { ed25519: ['ed25519'], second: ['ed25519'] } });
    const alice = world.users.alice!;
    ids = { uid: alice.uid + 8, gid: alice.uid + 8 };
    await run('ip', ['netns', 'add', NETNS]);
    // A veth pair names the namespace (this kernel has no dummy interfaces).
    const veth = await run('ip', ['-n', NETNS, 'link', 'add', 'lukkoveth0', 'type', 'veth', 'peer', 'name', 'lukkoveth1']);
    assert.equal(veth.code, 0, veth.stderr);
    translation = (await useTranslationServer(world, usersIni())).proc;
    server = await startServer(world);
  });

  after(async () => {
    await server?.stop();
    translation?.kill('SIGTERM');
    await run('ip', ['netns', 'del', NETNS]);
    if (world) cleanup(world);
  });

  test('tmpfs root with only the home bound: / holds the home and nothing else; no /etc/passwd', async () => {
    const r = await ssh(server, world.keys.ed25519, 'tmproot', ['ls /; echo ---; pwd; echo $HOME; echo made > here; cat here; cat /etc/passwd; echo $?']);
    assert.equal(r.code, 0, r.stderr);
    const [root, rest] = r.stdout.split('---\n') as [string, string];
    assert.deepEqual(lines(root), ['home']);
    assert.deepEqual(lines(rest), ['/home/tmproot', '/home/tmproot', 'made', '1']);
    assert.match(r.stderr, /can't open '\/etc\/passwd': No such file or directory/);
    assert.equal(readFileSync(join(homes.tmproot!, 'here'), 'utf8'), 'made\n');
  });

  test('the same jail through sftp (no sftp partition): the host\'s sftp-server runs in it', async () => {
    const r = await run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'tmproot@127.0.0.1'], { input: 'ls /\npwd\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sftp> ls \/\n\/home\s*\n/);
    assert.match(r.stdout, /Remote working directory: \/home\/tmproot/);
  });

  test('PID namespace with its own /proc: ps shows only the session\'s processes; UMASK and RLIMITS are the child\'s', async () => {
    const r = await ssh(server, world.keys.ed25519, 'pidns', ['umask; ulimit -n; ulimit -u; ps -e -o pid=,comm=']);
    assert.equal(r.code, 0, r.stderr);
    const [umask, nofile, nproc, ...ps] = lines(r.stdout);
    assert.deepEqual([umask, nofile, nproc], ['0027', '123', '300']);
    const procs = ps.map((l) => l.trim().split(/\s+/) as [string, string]);
    // PID 1 is lukko-exec, the namespace's init; then the shell (or ps itself, which bash execs).
    assert.deepEqual(procs[0], ['1', 'lukko-exec']);
    assert.ok(procs.every(([, comm]) => ['lukko-exec', 'bash', 'ps'].includes(comm)), r.stdout);
    assert.ok(procs.length <= 3, r.stdout);
  });

  test('PID namespace with a pty: an interactive login shell works, job control included, and its exit status comes back', async () => {
    const r = await ssh(server, world.keys.ed25519, 'pidns', [], { extra: ['-tt'], input: 'sleep 30 &\njobs; kill %1; wait; echo pid=$$; exit 3\n' });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /\[1\]\+\s+Running\s+sleep 30 &/);
    assert.match(r.stdout, /pid=2\r?\n/);
  });

  test('network namespace: only lo, and it is up; TCP forwarding is refused', async () => {
    const r = await ssh(server, world.keys.ed25519, 'netns', ["tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip -o link show lo | grep -c UP"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), ['lo', '1']);
    const fwd = await ssh(server, world.keys.ed25519, 'netns', [], { extra: ['-W', `127.0.0.1:${server.port}`] });
    assert.notEqual(fwd.code, 0);
    assert.match(fwd.stderr, /stdio forwarding failed/);
    await settled(server);
    assert.ok(server.events().some((e) => e.msg === 'forwarding refused' && e.user === 'netns'), server.output().slice(-3000));
  });

  test('a named network namespace (ip netns): the session is in it', async () => {
    const r = await ssh(server, world.keys.ed25519, 'netnsnamed', ["tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), ['lo', 'lukkoveth0', 'lukkoveth1']);
  });

  test('UTS, IPC and cgroup namespaces: the host name is the response\'s, the namespaces are not the server\'s', async () => {
    const r = await ssh(server, world.keys.ed25519, 'utsipc', ['hostname; readlink /proc/self/ns/ipc /proc/self/ns/cgroup; cat /proc/self/cgroup | tail -1']);
    assert.equal(r.code, 0, r.stderr);
    const [hostname, ipc, cgroupNs, cgroup] = lines(r.stdout);
    assert.equal(hostname, 'lukko-box');
    const ours = (await run('readlink', ['/proc/self/ns/ipc', '/proc/self/ns/cgroup'])).stdout.trim().split('\n');
    assert.notEqual(ipc, ours[0]);
    assert.notEqual(cgroupNs, ours[1]);
    assert.match(cgroup ?? '', /^0::\/$/); // the session's own cgroup is its root
  });

  test('CHROOT: the session\'s / is that directory', async () => {
    const r = await ssh(server, world.keys.ed25519, 'chrooted', ['ls /; pwd']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), ['bin', '/']);
  });

  test('user namespace with a mapped uid: /proc/self/uid_map matches the response', async () => {
    const r = await ssh(server, world.keys.ed25519, 'userns', ['cat /proc/self/uid_map; id -u; touch mine; stat -c %u mine']);
    assert.equal(r.code, 0, r.stderr);
    const [map, uid, owner] = lines(r.stdout);
    assert.deepEqual(map!.trim().split(/\s+/), ['1000', String(ids.uid), '1']);
    assert.equal(uid, '1000');
    assert.equal(owner, '1000');
    // On the host the file belongs to the account's real uid.
    assert.equal(readFileSync(join(homes.userns!, 'mine'), 'utf8'), '');
    const st = await run('stat', ['-c', '%u', join(homes.userns!, 'mine')]);
    assert.equal(st.stdout.trim(), String(ids.uid));
  });

  for (const user of ['userns', 'pidns', 'netns']) {
    test(`${user}: the child inherits no capabilities, groups, file descriptors or environment of the server`, async () => {
      const r = await ssh(server, world.keys.ed25519, user, ['grep -E "^(CapInh|CapPrm|CapEff|CapAmb|Groups):" /proc/self/status; echo ---; ls /proc/self/fd; echo ---; env | cut -d= -f1 | sort']);
      assert.equal(r.code, 0, r.stderr);
      const [status, fds, env] = r.stdout.split('---\n') as [string, string, string];
      for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) assert.match(status, new RegExp(`^${cap}:\\s+0+$`, 'm'));
      // Only the account's group (the response gave no supplementary groups).
      assert.match(status, /^Groups:\s*(\d+)?\s*$/m);
      assert.ok(!/^Groups:.*\b0\b/m.test(status), status);
      // 0-2, and 3 for the directory ls reads
      assert.deepEqual(lines(fds), ['0', '1', '2', '3']);
      const allowed = new Set(['HOME', 'LOGNAME', 'MAIL', 'PATH', 'PWD', 'SHELL', 'SHLVL', 'SSH_CLIENT', 'SSH_CONNECTION', 'USER', '_']);
      assert.deepEqual(lines(env).filter((n) => !allowed.has(n)), []);
    });
  }

  test('home-read-only: reading works, writing fails; the same user through another key can write', async () => {
    writeFileSync(join(homes.rohome!, 'readme'), 'readable\n');
    const ro = await ssh(server, world.keys.ed25519, 'rohome', ['cat readme; touch new 2>&1; echo $?']);
    assert.equal(ro.code, 0, ro.stderr);
    assert.match(ro.stdout, /^readable\n/);
    assert.match(ro.stdout, /Read-only file system\n1\n$/);
    assert.equal(existsSync(join(homes.rohome!, 'new')), false);
    const rw = await ssh(server, world.keys.second, 'rohome', ['touch new && echo written']);
    assert.equal(rw.code, 0, rw.stderr);
    assert.equal(rw.stdout, 'written\n');
    assert.equal(existsSync(join(homes.rohome!, 'new')), true);
  });

  test('an SFTP-only jailed account: sftp lists and writes only inside its home', async () => {
    const local = join(world.dir, 'payload');
    writeFileSync(local, 'jailed payload\n');
    const sftp = (input: string) => run('sftp', ['-b', '-', ...copyArgs(server.port, world.keys.ed25519!), 'sftpjail@127.0.0.1'], { input });
    const r = await sftp(`ls /\npwd\nput ${local} up.txt\nls\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sftp> ls \/\n\/home\s*\n/);
    assert.match(r.stdout, /Remote working directory: \/home\/sftpjail/);
    assert.equal(readFileSync(join(homes.sftpjail!, 'up.txt'), 'utf8'), 'jailed payload\n');
    // Outside the home there is nothing to see and nowhere to write.
    for (const attempt of ['ls /usr', 'ls /etc', `put ${local} /outside.txt`, 'mkdir /tmp']) {
      const bad = await sftp(`${attempt}\n`);
      assert.notEqual(bad.code, 0, `${attempt}: ${bad.stdout}`);
    }
    // and no shell
    const exec = await ssh(server, world.keys.ed25519, 'sftpjail', ['ls']);
    assert.equal(exec.code, 255);
  });

  test('a bind mount whose source does not exist, without OPTIONAL, refuses the session cleanly', async () => {
    await settled(server);
    const before = childExits(server).length;
    const r = await ssh(server, world.keys.ed25519, 'missing', ['echo should not run']);
    assert.equal(r.code, 126);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /lukko-exec: bind mount \/nonexistent-lukko-source: No such file or directory/);
    // The connection ended normally (exit 0), and the server takes the next login.
    await settled(server);
    assert.deepEqual(childExits(server).slice(before), [0]);
    const next = await ssh(server, world.keys.ed25519, 'pidns', ['echo next']);
    assert.equal(next.stdout, 'next\n', next.stderr);
  });

  test('OPTIONAL skips a missing source; symlinks, WRITE_FILE and a /tmp tmpfs make the rest of the container', async () => {
    const r = await ssh(server, world.keys.ed25519, 'optional', ['ls /; cat /motd; echo; test -e /data || echo no-data; df -h /tmp | tail -1 | tr -s " " | cut -d" " -f2']);
    assert.equal(r.code, 0, r.stderr);
    const out = lines(r.stdout);
    assert.deepEqual(out.slice(0, 8), ['bin', 'home', 'lib', 'lib64', 'motd', 'tmp', 'usr', 'hello from the container']);
    assert.deepEqual(out.slice(8), ['no-data', '1.0M']);
  });
});
