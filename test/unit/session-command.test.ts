import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Account } from '../../src/auth/account.ts';
import { unrestrictedPolicy } from '../../src/auth/policy.ts';
import { acceptedClientEnv, buildEnvironment, describeSession, plainIp } from '../../src/session/command.ts';
import type { SessionRequest } from '../../src/session/command.ts';

const alice: Account = { name: 'alice', uid: 1001, gid: 1001, home: '/home/alice', shell: '/bin/bash', groups: 'nss', source: 'nss' };
const peer = { remoteIp: '::ffff:192.0.2.7', remotePort: 50000, localIp: '::ffff:192.0.2.1', localPort: 22 };

test('exec runs "<shell> -c <command>" with the shell\'s name as argv[0]', () => {
  const d = describeSession({ account: alice, policy: unrestrictedPolicy(), request: { kind: 'exec', command: 'ls -l' }, peer, clientEnv: [] });
  assert.equal(d.file, '/bin/bash');
  assert.equal(d.argv0, 'bash');
  assert.deepEqual(d.args, ['-c', 'ls -l']);
  assert.equal(d.cwd, '/home/alice');
  assert.equal(d.uid, 1001);
  assert.equal(d.groups, 'nss');
});

test('a shell request runs the login shell: argv[0] "-bash", no arguments', () => {
  const d = describeSession({ account: alice, policy: unrestrictedPolicy(), request: { kind: 'shell' }, peer, clientEnv: [] });
  assert.equal(d.argv0, '-bash');
  assert.deepEqual(d.args, []);
});

test('a forced command replaces exec, shell and subsystem; SSH_ORIGINAL_COMMAND as OpenSSH sets it', () => {
  const policy = { ...unrestrictedPolicy(), forcedCommand: 'echo hi' };
  const exec = describeSession({ account: alice, policy, request: { kind: 'exec', command: 'rm -rf /' }, peer, clientEnv: [] });
  assert.deepEqual(exec.args, ['-c', 'echo hi']);
  assert.equal(new Map(exec.env).get('SSH_ORIGINAL_COMMAND'), 'rm -rf /');
  const shell = describeSession({ account: alice, policy, request: { kind: 'shell' }, peer, clientEnv: [] });
  assert.deepEqual(shell.args, ['-c', 'echo hi']);
  assert.equal(new Map(shell.env).has('SSH_ORIGINAL_COMMAND'), false);
  const sub = describeSession({ account: alice, policy, request: { kind: 'subsystem', name: 'sftp', command: '/usr/lib/openssh/sftp-server' }, peer, clientEnv: [] });
  assert.deepEqual(sub.args, ['-c', 'echo hi']);
  assert.equal(new Map(sub.env).get('SSH_ORIGINAL_COMMAND'), '/usr/lib/openssh/sftp-server');
});

test('the environment: login variables, SSH_CLIENT/SSH_CONNECTION with plain IPv4, client LANG/LC_* only', () => {
  const env = new Map(
    buildEnvironment({ account: alice, peer, clientEnv: [['LANG', 'de_DE.UTF-8'], ['LD_PRELOAD', '/x.so'], ['PATH', '/evil'], ['LC_ALL', 'C']], pty: { term: 'xterm', cols: 80, rows: 24, width: 0, height: 0, modes: {} } }),
  );
  assert.equal(env.get('USER'), 'alice');
  assert.equal(env.get('LOGNAME'), 'alice');
  assert.equal(env.get('HOME'), '/home/alice');
  assert.equal(env.get('SHELL'), '/bin/bash');
  assert.equal(env.get('PATH'), '/usr/local/bin:/usr/bin:/bin');
  assert.equal(env.get('MAIL'), '/var/mail/alice');
  assert.equal(env.get('TERM'), 'xterm');
  assert.equal(env.get('LANG'), 'de_DE.UTF-8');
  assert.equal(env.get('LC_ALL'), 'C');
  assert.equal(env.has('LD_PRELOAD'), false);
  assert.equal(env.get('SSH_CLIENT'), '192.0.2.7 50000 22');
  assert.equal(env.get('SSH_CONNECTION'), '192.0.2.7 50000 192.0.2.1 22');
});

test('root gets the sbin directories in PATH', () => {
  const env = new Map(buildEnvironment({ account: { ...alice, uid: 0 }, peer, clientEnv: [] }));
  assert.match(env.get('PATH')!, /\/usr\/sbin/);
});

test('accepted client variables', () => {
  assert.equal(acceptedClientEnv('LANG'), true);
  assert.equal(acceptedClientEnv('LC_MESSAGES'), true);
  assert.equal(acceptedClientEnv('LC_'), false);
  assert.equal(acceptedClientEnv('TERM'), false);
  assert.equal(plainIp('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(plainIp('2001:db8::1'), '2001:db8::1');
});

test('a translated account: SETENV overrides defaults but not what lukko knows; cwd, umask, limits, argv[0]', () => {
  const carol: Account = {
    name: 'carol', uid: 2001, gid: 100, home: '/home/carol', shell: '/bin/bash', groups: [27], source: 'translation',
    spawn: {
      setenv: ['LANG=C.UTF-8', 'HOME=/srv/carol', 'USER=root', 'SSH_CONNECTION=forged', 'PATH=/opt/bin'],
      umask: 0o027, noNewPrivs: true, chdir: '/srv/www', processName: 'carol-shell', childTags: [],
      rlimits: new Map([['NOFILE', { soft: 64n, hard: 128n }]]),
    },
  };
  const d = describeSession({ account: carol, policy: unrestrictedPolicy(), request: { kind: 'exec', command: 'id' }, peer, clientEnv: [['LANG', 'de_DE']] });
  const env = new Map(d.env);
  assert.equal(env.get('LANG'), 'C.UTF-8');
  assert.equal(env.get('HOME'), '/srv/carol');
  assert.equal(env.get('PATH'), '/opt/bin');
  assert.equal(env.get('USER'), 'carol');
  assert.equal(env.get('SSH_CONNECTION'), '192.0.2.7 50000 192.0.2.1 22');
  assert.equal(d.cwd, '/srv/www');
  assert.equal(d.umask, 0o027);
  assert.equal(d.noNewPrivs, true);
  assert.deepEqual(d.rlimits?.get('NOFILE'), { soft: 64n, hard: 128n });
  assert.equal(d.argv0, 'carol-shell');
  assert.deepEqual(d.groups, [27]);
});

test('a partition program runs directly, unless a forced command says otherwise', () => {
  const request: SessionRequest = { kind: 'program', name: 'sftp', file: '/opt/sftp-server', args: ['-l', 'INFO'], command: 'internal-sftp' };
  const d = describeSession({ account: alice, policy: unrestrictedPolicy(), request, peer, clientEnv: [] });
  assert.equal(d.file, '/opt/sftp-server');
  assert.equal(d.argv0, 'sftp-server');
  assert.deepEqual(d.args, ['-l', 'INFO']);
  const forced = describeSession({ account: alice, policy: { ...unrestrictedPolicy(), forcedCommand: 'echo no' }, request, peer, clientEnv: [] });
  assert.deepEqual([forced.file, ...forced.args], ['/bin/bash', '-c', 'echo no']);
});
