import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TranslationPacket } from '../../src/translation/codec.ts';
import { encodeU16, encodeU32 } from '../../src/translation/codec.ts';
import { TranslationCommand as C } from '../../src/translation/commands.ts';
import type { TranslationCommandName } from '../../src/translation/commands.ts';
import { TranslationError } from '../../src/translation/errors.ts';
import type { TranslationRule } from '../../src/translation/errors.ts';
import { RLIM_INFINITY } from '../../src/translation/rlimits.ts';
import {
  isExecAllowed, isPasswordless, isRejected, isSftpAllowed, isSftpOnly, parseLoginResponse,
} from '../../src/translation/response.ts';
import type { TranslationResponse } from '../../src/translation/response.ts';

type Name = TranslationCommandName;

/** A packet by name; a string payload is taken as latin1 so tests can write any byte. */
function p(name: Name | number, payload: string | Buffer = ''): TranslationPacket {
  const command = typeof name === 'number' ? name : C[name];
  return { command, payload: typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload };
}

const ids = (uid: number, gid: number, ...groups: number[]): TranslationPacket => p('UID_GID', encodeU32(uid, gid, ...groups));
const ACCOUNT = [ids(1000, 1000), p('HOME', '/home/a')];

function parse(...body: TranslationPacket[]): TranslationResponse | TranslationError {
  return parseLoginResponse([p('BEGIN'), ...body, p('END')]);
}

function ok(...body: TranslationPacket[]): TranslationResponse {
  const r = parse(...body);
  if (r instanceof TranslationError) assert.fail(`unexpected ${r.rule}: ${r.message}`);
  return r;
}

function fails(rule: TranslationRule, packet: string | undefined, ...body: TranslationPacket[]): TranslationError {
  const r = parse(...body);
  assert.ok(r instanceof TranslationError, `expected ${rule}, got a response`);
  assert.equal(r.rule, rule, r.message);
  if (packet !== undefined) assert.equal(r.packet, packet, r.message);
  return r;
}

// ---------------------------------------------------------------- framing

test('framing: BEGIN first, one BEGIN, END last, END present', () => {
  assert.equal((parseLoginResponse([]) as TranslationError).rule, 'no-begin');
  assert.equal((parseLoginResponse([p('END')]) as TranslationError).rule, 'no-begin');
  assert.equal((parseLoginResponse([p('BEGIN'), p('BEGIN'), p('END')]) as TranslationError).rule, 'double-begin');
  assert.equal((parseLoginResponse([p('BEGIN'), p('END'), p('STATUS', encodeU16(1))]) as TranslationError).rule, 'excessive-data');
  assert.equal((parseLoginResponse([p('BEGIN'), ...ACCOUNT]) as TranslationError).rule, 'hung-up');
  assert.equal((parseLoginResponse([p('BEGIN', '\x02'), p('END')]) as TranslationResponse).protocolVersion, 2);
});

test('an empty response is a success without any child options', () => {
  const r = ok();
  assert.equal(isRejected(r), false);
  assert.equal(r.topLevel, undefined);
  assert.equal(isExecAllowed(r), false);
  assert.equal(isSftpAllowed(r), false);
  assert.equal(r.services.size, 0);
});

// ---------------------------------------------------------------- STATUS and the outcome

test('STATUS: exactly 2 bytes little-endian; any non-zero value rejects, 200 included', () => {
  assert.equal(ok(p('STATUS', encodeU16(404))).status, 404);
  assert.equal(isRejected(ok(p('STATUS', encodeU16(200)))), true);
  fails('malformed', 'STATUS', p('STATUS', '\x94'));
  fails('malformed', 'STATUS', p('STATUS', '\x94\x01\x00'));
  fails('malformed', 'STATUS', p('STATUS'));
});

test('STATUS 0 is the original\'s "no status": a success, validated as one', () => {
  const r = ok(p('STATUS', encodeU16(0)), ...ACCOUNT);
  assert.equal(r.status, undefined);
  assert.equal(isRejected(r), false);
  fails('invalid-account', 'HOME', p('STATUS', encodeU16(0)), ids(5, 5));
  assert.equal(ok(p('STATUS', encodeU16(403)), p('STATUS', encodeU16(0)), ...ACCOUNT).status, undefined);
});

test('the last STATUS wins', () => {
  assert.equal(ok(p('STATUS', encodeU16(403)), p('STATUS', encodeU16(404))).status, 404);
});

test('a rejection is not checked for an account: options without HOME are fine there', () => {
  assert.equal(ok(p('STATUS', encodeU16(404)), ids(0, 0)).status, 404);
});

test('success: top-level uid and gid must be non-zero and HOME present', () => {
  ok(...ACCOUNT);
  fails('invalid-account', 'UID_GID', ids(0, 1000), p('HOME', '/h'));
  fails('invalid-account', 'UID_GID', ids(1000, 0), p('HOME', '/h'));
  fails('invalid-account', 'UID_GID', p('HOME', '/h'));
  fails('invalid-account', 'HOME', ids(1000, 1000));
  fails('invalid-account', 'UID_GID', p('SHELL', '/bin/sh'));
});

test('MESSAGE: 1 to 1024 bytes of text', () => {
  assert.equal(ok(p('MESSAGE', 'm'.repeat(1024))).message?.length, 1024);
  fails('malformed', 'MESSAGE', p('MESSAGE', 'm'.repeat(1025)));
  fails('malformed', 'MESSAGE', p('MESSAGE'));
  fails('malformed', 'MESSAGE', p('MESSAGE', 'a\0b'));
});

// ---------------------------------------------------------------- response-wide fields

test('NO_PASSWORD: empty, sftp, or ignored; only once', () => {
  const none = ok(p('NO_PASSWORD'));
  assert.equal(none.noPassword, 'unrestricted');
  assert.equal(isPasswordless(none), true);
  assert.equal(isSftpOnly(none), false);
  const sftp = ok(p('NO_PASSWORD', 'sftp'));
  assert.equal(sftp.noPassword, 'sftp');
  assert.equal(isSftpOnly(sftp), true);
  const other = ok(p('NO_PASSWORD', 'shell'));
  assert.equal(other.noPassword, 'ignored');
  assert.equal(isPasswordless(other), false);
  assert.equal(isSftpOnly(other), false);
  fails('duplicate', 'NO_PASSWORD', p('NO_PASSWORD'), p('NO_PASSWORD'));
  fails('malformed', 'NO_PASSWORD', p('NO_PASSWORD', 'sftp\0x'));
});

test('TOKEN: may be empty, the last one wins, sftp-only restricts exec', () => {
  assert.equal(ok(p('TOKEN')).token, '');
  const r = ok(p('TOKEN', 'sftp-only'), p('TOKEN', 'x'), ...ACCOUNT);
  assert.equal(r.token, 'x');
  assert.equal(isExecAllowed(r), true);
  const only = ok(p('TOKEN', 'x'), p('TOKEN', 'sftp-only'), ...ACCOUNT);
  assert.equal(isExecAllowed(only), false);
  assert.equal(isSftpAllowed(only), true);
  fails('malformed', 'TOKEN', p('TOKEN', '\0'));
});

test('AUTHORIZED_KEYS: non-empty, once; NO_HOME_AUTHORIZED_KEYS: a flag, once', () => {
  assert.equal(ok(p('AUTHORIZED_KEYS', 'ssh-ed25519 AAAA x\n')).authorizedKeys, 'ssh-ed25519 AAAA x\n');
  fails('malformed', 'AUTHORIZED_KEYS', p('AUTHORIZED_KEYS'));
  fails('duplicate', 'AUTHORIZED_KEYS', p('AUTHORIZED_KEYS', 'a'), p('AUTHORIZED_KEYS', 'b'));
  assert.equal(ok().noHomeAuthorizedKeys, false);
  assert.equal(ok(p('NO_HOME_AUTHORIZED_KEYS')).noHomeAuthorizedKeys, true);
  fails('malformed', 'NO_HOME_AUTHORIZED_KEYS', p('NO_HOME_AUTHORIZED_KEYS', 'x'));
  fails('duplicate', 'NO_HOME_AUTHORIZED_KEYS', p('NO_HOME_AUTHORIZED_KEYS'), p('NO_HOME_AUTHORIZED_KEYS'));
});

test('SITE is any string; ARCH is amd64 or arm64', () => {
  assert.equal(ok(p('SITE', 'site-42')).site, 'site-42');
  assert.equal(ok(p('ARCH', 'amd64')).arch, 'amd64');
  assert.equal(ok(p('ARCH', 'arm64')).arch, 'arm64');
  fails('malformed', 'ARCH', p('ARCH', 'x86_64'));
  fails('malformed', 'ARCH', p('ARCH'));
});

test('strings must be UTF-8 without NUL, everywhere', () => {
  fails('malformed', 'HOME', ids(1, 1), p('HOME', '/home/\xff'));
  fails('malformed', 'HOME', ids(1, 1), p('HOME', '/home/a\0b'));
  fails('malformed', 'SITE', p('SITE', 'a\0'));
  assert.equal(ok(ids(1, 1), p('HOME', Buffer.from('/home/ä'))).topLevel?.home, '/home/ä');
});

// ---------------------------------------------------------------- SERVICE partitions

test('SERVICE starts a partition; later child packets go there, with no way back', () => {
  const r = ok(...ACCOUNT, p('SERVICE', 'sftp'), p('HOME', '/srv'), p('SHELL', '/bin/false'));
  assert.equal(r.topLevel?.home, '/home/a');
  assert.equal(r.topLevel?.shell, undefined);
  assert.equal(r.services.get('sftp')?.home, '/srv');
  assert.equal(r.services.get('sftp')?.shell, '/bin/false');
});

test('partitions inherit nothing from the top level', () => {
  const r = ok(ids(7, 8), p('HOME', '/h'), p('UMASK', encodeU16(0o77)), p('SERVICE', 'rsync'), p('EXECUTE', '/usr/bin/rsync'));
  const rsync = r.services.get('rsync');
  assert.equal(rsync?.uidGid, undefined);
  assert.equal(rsync?.home, undefined);
  assert.equal(rsync?.umask, undefined);
  assert.equal(rsync?.execute, '/usr/bin/rsync');
});

test('uniqueness is per options: the top level and each partition have their own', () => {
  const r = ok(...ACCOUNT, p('SERVICE', 'sftp'), ...ACCOUNT, p('SERVICE', 'git-upload-pack'), ...ACCOUNT);
  assert.equal(r.services.get('sftp')?.home, '/home/a');
  assert.equal(r.services.get('git-upload-pack')?.home, '/home/a');
  fails('duplicate', 'HOME', ...ACCOUNT, p('SERVICE', 'sftp'), p('HOME', '/a'), p('HOME', '/b'));
});

test('partitions: known names in `services`, others in `otherServices` but still checked', () => {
  const r = ok(p('SERVICE', 'sftp'), p('SERVICE', 'rsync'), p('SERVICE', 'git-receive-pack'), p('SERVICE', 'git-upload-pack'), p('SERVICE', 'ftp'), p('HOME', '/x'));
  assert.deepEqual([...r.services.keys()], ['sftp', 'rsync', 'git-receive-pack', 'git-upload-pack']);
  assert.deepEqual(r.otherServices, ['ftp']);
  fails('malformed', 'HOME', p('SERVICE', 'ftp'), p('HOME', 'relative'));
  fails('duplicate', 'HOME', p('SERVICE', 'ftp'), p('HOME', '/a'), p('HOME', '/b'));
});

test('a repeated partition name: the last one wins', () => {
  const r = ok(p('SERVICE', 'sftp'), p('HOME', '/first'), p('SERVICE', 'sftp'), p('HOME', '/second'));
  assert.equal(r.services.get('sftp')?.home, '/second');
});

test('SERVICE must name something', () => {
  fails('malformed', 'SERVICE', p('SERVICE'));
});

test('only partitions: no exec, SFTP only with an sftp partition, no account check', () => {
  const r = ok(p('SERVICE', 'sftp'), ids(5, 5));
  assert.equal(r.topLevel, undefined);
  assert.equal(isExecAllowed(r), false);
  assert.equal(isSftpAllowed(r), true);
  assert.equal(isSftpAllowed(ok(p('SERVICE', 'rsync'))), false);
});

// ---------------------------------------------------------------- child basics

test('UID_GID: 8 to 136 bytes in steps of 4, little-endian', () => {
  const groups = Array.from({ length: 32 }, (_, i) => i + 100);
  assert.deepEqual(ok(ids(1001, 100, ...groups), p('HOME', '/h')).topLevel?.uidGid, { uid: 1001, gid: 100, groups });
  assert.deepEqual(ok(p('UID_GID', Buffer.from('e9030000 64000000'.replace(' ', ''), 'hex')), p('HOME', '/h')).topLevel?.uidGid, { uid: 1001, gid: 100, groups: [] });
  fails('malformed', 'UID_GID', p('UID_GID', Buffer.alloc(6, 1)));
  fails('malformed', 'UID_GID', p('UID_GID', Buffer.alloc(4, 1)));
  fails('malformed', 'UID_GID', p('UID_GID', Buffer.alloc(10, 1)));
  fails('malformed', 'UID_GID', ids(1, 1, ...groups, 999));
});

test('UID_GID: supplementary groups end at the first 0', () => {
  assert.deepEqual(ok(ids(5, 6, 7, 0, 8), p('HOME', '/h')).topLevel?.uidGid?.groups, [7]);
});

test('UID_GID: a second one in the same options is a duplicate, unless the first was all zero', () => {
  fails('duplicate', 'UID_GID', ids(5, 6), ids(5, 6));
  fails('duplicate', 'UID_GID', ids(0, 0, 4), ids(5, 6));
  assert.deepEqual(ok(ids(0, 0), ids(5, 6), p('HOME', '/h')).topLevel?.uidGid, { uid: 5, gid: 6, groups: [] });
});

test('HOME, SHELL, EXECUTE, CHDIR: absolute paths, once per options', () => {
  for (const name of ['HOME', 'SHELL', 'EXECUTE', 'CHDIR'] as const) {
    fails('malformed', name, p(name, 'relative'));
    fails('malformed', name, p(name));
    fails('duplicate', name, p(name, '/a'), p(name, '/b'));
  }
  const t = ok(...ACCOUNT, p('SHELL', '/bin/zsh'), p('EXECUTE', '/bin/x'), p('CHDIR', '/w')).topLevel!;
  assert.deepEqual([t.shell, t.execute, t.chdir], ['/bin/zsh', '/bin/x', '/w']);
});

test('APPEND needs EXECUTE earlier in the same options', () => {
  assert.deepEqual(ok(...ACCOUNT, p('EXECUTE', '/bin/x'), p('APPEND', '-a'), p('APPEND', 'b')).topLevel?.args, ['-a', 'b']);
  fails('misplaced', 'APPEND', ...ACCOUNT, p('APPEND', '-a'));
  fails('misplaced', 'APPEND', p('APPEND', '-a'));
  fails('misplaced', 'APPEND', ...ACCOUNT, p('EXECUTE', '/bin/x'), p('SERVICE', 'sftp'), p('APPEND', '-a'));
  fails('malformed', 'APPEND', ...ACCOUNT, p('EXECUTE', '/bin/x'), p('APPEND'));
});

test('PROCESS_NAME needs options to exist already; once', () => {
  assert.equal(ok(...ACCOUNT, p('PROCESS_NAME', 'sftp')).topLevel?.processName, 'sftp');
  fails('misplaced', 'PROCESS_NAME', p('PROCESS_NAME', 'x'));
  assert.equal(ok(p('SERVICE', 'sftp'), p('PROCESS_NAME', 'x')).services.get('sftp')?.processName, 'x');
  fails('duplicate', 'PROCESS_NAME', ...ACCOUNT, p('PROCESS_NAME', 'x'), p('PROCESS_NAME', 'y'));
  fails('malformed', 'PROCESS_NAME', ...ACCOUNT, p('PROCESS_NAME'));
});

test('SETENV and PAIR: NAME=VALUE, in order, repeatable', () => {
  assert.deepEqual(ok(...ACCOUNT, p('SETENV', 'A=1'), p('PAIR', 'B='), p('SETENV', 'C==x')).topLevel?.setenv, ['A=1', 'B=', 'C==x']);
  for (const name of ['SETENV', 'PAIR'] as const) {
    for (const bad of ['', '=x', 'NOEQUALS', 'A=\0']) fails('malformed', name, p(name, bad));
  }
});

test('UMASK: 2 bytes, at most 0777, once', () => {
  assert.equal(ok(...ACCOUNT, p('UMASK', encodeU16(0o777))).topLevel?.umask, 0o777);
  assert.equal(ok(...ACCOUNT, p('UMASK', Buffer.from([0x12, 0x00]))).topLevel?.umask, 0o022);
  fails('malformed', 'UMASK', p('UMASK', encodeU16(0o1000)));
  fails('malformed', 'UMASK', p('UMASK', '\x12'));
  fails('malformed', 'UMASK', p('UMASK', encodeU32(0o22)));
  fails('duplicate', 'UMASK', p('UMASK', encodeU16(0o22)), p('UMASK', encodeU16(0o22)));
});

test('RLIMITS: letters, numbers with K/M/G/T, ! for unlimited, S/H, whitespace; packets add up', () => {
  const r = ok(...ACCOUNT, p('RLIMITS', 'n1024 Sv1G'), p('RLIMITS', 't! Hu2K\tc0'), p('RLIMITS', 'm1T'));
  assert.deepEqual(r.topLevel?.rlimits, new Map([
    ['NOFILE', { soft: 1024n, hard: 1024n }],
    ['AS', { soft: 1n << 30n }],
    ['CPU', { soft: RLIM_INFINITY, hard: RLIM_INFINITY }],
    ['NPROC', { hard: 2048n }],
    ['CORE', { hard: 0n }],
    ['RSS', { soft: 1n << 40n, hard: 1n << 40n }],
  ]));
  const all = ok(...ACCOUNT, p('RLIMITS', 't1f2d3s4c5m6u7n8l9v10i11q12e13r14')).topLevel?.rlimits;
  assert.equal(all?.size, 14);
  assert.deepEqual(all?.get('RTPRIO'), { soft: 14n, hard: 14n });
  assert.deepEqual(ok(...ACCOUNT, p('RLIMITS', 'n5'), p('RLIMITS', 'Sn6')).topLevel?.rlimits?.get('NOFILE'), { soft: 6n, hard: 5n });
  assert.equal(ok(...ACCOUNT, p('RLIMITS', '')).topLevel?.rlimits?.size, 0);
  for (const bad of ['n', 'x1', 'n 5', 'n-1', 'nK', 'n18446744073709551616', 'n1\0', 'S n']) {
    fails('malformed', 'RLIMITS', p('RLIMITS', bad));
  }
});

test('RLIMITS: a suffix that overflows 64 bits wraps as in the original', () => {
  assert.deepEqual(ok(...ACCOUNT, p('RLIMITS', 'f18446744073709551615K')).topLevel?.rlimits?.get('FSIZE'), {
    soft: RLIM_INFINITY - 1023n, hard: RLIM_INFINITY - 1023n,
  });
});

test('NO_NEW_PRIVS: a flag, once; CHILD_TAG: non-empty, repeatable', () => {
  assert.equal(ok(...ACCOUNT).topLevel?.noNewPrivs, false);
  assert.equal(ok(...ACCOUNT, p('NO_NEW_PRIVS')).topLevel?.noNewPrivs, true);
  fails('malformed', 'NO_NEW_PRIVS', p('NO_NEW_PRIVS', 'x'));
  fails('duplicate', 'NO_NEW_PRIVS', p('NO_NEW_PRIVS'), p('NO_NEW_PRIVS'));
  assert.deepEqual(ok(...ACCOUNT, p('CHILD_TAG', 'a'), p('CHILD_TAG', 'b')).topLevel?.childTags, ['a', 'b']);
  fails('malformed', 'CHILD_TAG', p('CHILD_TAG'));
});

test('the first child packet creates the top level wherever it comes', () => {
  const r = ok(p('TOKEN', 't'), p('SETENV', 'A=1'), p('MESSAGE', 'm'), ...ACCOUNT);
  assert.deepEqual(r.topLevel?.setenv, ['A=1']);
});

// ---------------------------------------------------------------- isolation

test('isolation packets are kept by name, in order, never dropped', () => {
  const r = ok(
    ...ACCOUNT,
    p('USER_NAMESPACE'), p('PID_NAMESPACE'), p('NETWORK_NAMESPACE'), p('IPC_NAMESPACE'), p('CGROUP_NAMESPACE'),
    p('UTS_NAMESPACE', 'box'), p('MOUNT_ROOT_TMPFS'), p('MOUNT_PROC'), p('MOUNT_DEV'), p('MOUNT_HOME', '/home/a'),
    p('MOUNT_TMP_TMPFS', 'size=64M'), p('MOUNT_TMP_TMPFS_EXEC'), p('TMPFS_DIRS_READABLE'), p('CHROOT', '/jail'),
    p('CGROUP', 'user-1'), p('CGROUP_SET', 'cpu.weight=50'), p('CGROUP_XATTR', 'user.x=1'), p('MAX_INOTIFY', encodeU32(8, 100)),
    p('STDERR_PATH', '/log'), p('STDERR_POND'), p('SIGKILL'), p('FORBID_USER_NS'), p('FORBID_MULTICAST'), p('FORBID_BIND'),
    p('ALLOW_PTRACE'), p('CAP_SYS_RESOURCE'), p('MOUNT_LISTEN_STREAM', '/run/x\0tcp'),
  );
  const i = r.topLevel!.isolation;
  assert.deepEqual(i.packets, [
    'USER_NAMESPACE', 'PID_NAMESPACE', 'NETWORK_NAMESPACE', 'IPC_NAMESPACE', 'CGROUP_NAMESPACE', 'UTS_NAMESPACE',
    'MOUNT_ROOT_TMPFS', 'MOUNT_PROC', 'MOUNT_DEV', 'MOUNT_HOME', 'MOUNT_TMP_TMPFS', 'MOUNT_TMP_TMPFS_EXEC',
    'TMPFS_DIRS_READABLE', 'CHROOT', 'CGROUP', 'CGROUP_SET', 'CGROUP_XATTR', 'MAX_INOTIFY', 'STDERR_PATH', 'STDERR_POND',
    'SIGKILL', 'FORBID_USER_NS', 'FORBID_MULTICAST', 'FORBID_BIND', 'ALLOW_PTRACE', 'CAP_SYS_RESOURCE', 'MOUNT_LISTEN_STREAM',
  ]);
  assert.equal(i.userNamespace, true);
  assert.deepEqual(i.pidNamespace, { kind: 'new' });
  assert.deepEqual(i.networkNamespace, { kind: 'new' });
  assert.equal(i.ipcNamespace && i.cgroupNamespace && i.mountRootTmpfs && i.mountProc && i.mountDev, true);
  assert.equal(i.utsHostname, 'box');
  assert.equal(i.mountTmpTmpfs, 'size=64M');
  assert.equal(i.mountTmpTmpfsExec && i.tmpfsDirsReadable, true);
  assert.equal(i.chroot, '/jail');
  assert.equal(i.cgroup, 'user-1');
  assert.deepEqual(i.cgroupSet, [{ name: 'cpu.weight', value: '50' }]);
  assert.deepEqual(i.cgroupXattr, [{ name: 'user.x', value: '1' }]);
  assert.deepEqual(i.maxInotify, { instances: 8, watches: 100 });
  assert.deepEqual(i.stderrPath, { path: '/log', jailed: false });
  assert.equal(i.stderrPond && i.sigkill && i.forbidUserNs && i.forbidMulticast && i.forbidBind && i.allowPtrace && i.capSysResource, true);
  assert.equal(i.mountListenStream?.toString('latin1'), '/run/x\0tcp');
});

test('namespace flags: no payload; USER_NAMESPACE and IPC_NAMESPACE may repeat, the others not', () => {
  for (const name of ['USER_NAMESPACE', 'PID_NAMESPACE', 'NETWORK_NAMESPACE', 'IPC_NAMESPACE', 'CGROUP_NAMESPACE', 'MOUNT_ROOT_TMPFS', 'MOUNT_PROC'] as const) {
    fails('malformed', name, p(name, 'x'));
  }
  ok(...ACCOUNT, p('USER_NAMESPACE'), p('USER_NAMESPACE'), p('IPC_NAMESPACE'), p('IPC_NAMESPACE'));
  for (const name of ['PID_NAMESPACE', 'NETWORK_NAMESPACE', 'CGROUP_NAMESPACE', 'MOUNT_PROC'] as const) {
    fails('duplicate', name, p(name), p(name));
  }
});

test('PID_NAMESPACE and PID_NAMESPACE_NAME: one PID namespace only; names are [A-Za-z0-9_-]+', () => {
  assert.deepEqual(ok(...ACCOUNT, p('PID_NAMESPACE_NAME', 'acc-1_x')).topLevel?.isolation.pidNamespace, { kind: 'named', name: 'acc-1_x' });
  fails('duplicate', 'PID_NAMESPACE_NAME', p('PID_NAMESPACE'), p('PID_NAMESPACE_NAME', 'a'));
  fails('duplicate', 'PID_NAMESPACE', p('PID_NAMESPACE_NAME', 'a'), p('PID_NAMESPACE'));
  fails('malformed', 'PID_NAMESPACE_NAME', p('PID_NAMESPACE_NAME', 'a.b'));
  fails('malformed', 'PID_NAMESPACE_NAME', p('PID_NAMESPACE_NAME'));
});

test('NETWORK_NAMESPACE and NETWORK_NAMESPACE_NAME conflict', () => {
  assert.deepEqual(ok(...ACCOUNT, p('NETWORK_NAMESPACE_NAME', 'net1')).topLevel?.isolation.networkNamespace, { kind: 'named', name: 'net1' });
  fails('conflict', 'NETWORK_NAMESPACE_NAME', p('NETWORK_NAMESPACE'), p('NETWORK_NAMESPACE_NAME', 'n'));
  fails('conflict', 'NETWORK_NAMESPACE', p('NETWORK_NAMESPACE_NAME', 'n'), p('NETWORK_NAMESPACE'));
  fails('duplicate', 'NETWORK_NAMESPACE_NAME', p('NETWORK_NAMESPACE_NAME', 'n'), p('NETWORK_NAMESPACE_NAME', 'm'));
  fails('malformed', 'NETWORK_NAMESPACE_NAME', p('NETWORK_NAMESPACE_NAME', 'a/b'));
});

test('UTS_NAMESPACE: a non-empty host name, once', () => {
  fails('malformed', 'UTS_NAMESPACE', p('UTS_NAMESPACE'));
  fails('duplicate', 'UTS_NAMESPACE', p('UTS_NAMESPACE', 'a'), p('UTS_NAMESPACE', 'b'));
});

test('one root: PIVOT_ROOT or MOUNT_ROOT_TMPFS; MOUNT_DEV needs one of them earlier', () => {
  assert.equal(ok(...ACCOUNT, p('PIVOT_ROOT', '/new'), p('MOUNT_DEV')).topLevel?.isolation.pivotRoot, '/new');
  fails('duplicate', 'MOUNT_ROOT_TMPFS', p('PIVOT_ROOT', '/new'), p('MOUNT_ROOT_TMPFS'));
  fails('duplicate', 'PIVOT_ROOT', p('MOUNT_ROOT_TMPFS'), p('PIVOT_ROOT', '/new'));
  fails('duplicate', 'PIVOT_ROOT', p('PIVOT_ROOT', '/a'), p('PIVOT_ROOT', '/b'));
  fails('malformed', 'PIVOT_ROOT', p('PIVOT_ROOT', 'rel'));
  fails('misplaced', 'MOUNT_DEV', p('MOUNT_DEV'));
  fails('misplaced', 'MOUNT_DEV', p('MOUNT_DEV'), p('MOUNT_ROOT_TMPFS'));
  fails('misplaced', 'MOUNT_DEV', p('MOUNT_ROOT_TMPFS'), p('SERVICE', 'sftp'), p('MOUNT_DEV'));
  fails('duplicate', 'MOUNT_DEV', p('MOUNT_ROOT_TMPFS'), p('MOUNT_DEV'), p('MOUNT_DEV'));
  fails('malformed', 'MOUNT_DEV', p('MOUNT_ROOT_TMPFS'), p('MOUNT_DEV', 'x'));
});

test('MOUNT_HOME needs HOME earlier in the same options; one bind mount per target', () => {
  fails('misplaced', 'MOUNT_HOME', p('MOUNT_HOME', '/home/a'), p('HOME', '/home/a'));
  fails('misplaced', 'MOUNT_HOME', ...ACCOUNT, p('SERVICE', 'sftp'), p('MOUNT_HOME', '/home/a'));
  fails('malformed', 'MOUNT_HOME', ...ACCOUNT, p('MOUNT_HOME', 'home'));
  fails('duplicate', 'MOUNT_HOME', ...ACCOUNT, p('MOUNT_HOME', '/h'), p('MOUNT_HOME', '/h'));
  fails('duplicate', 'MOUNT_HOME', ...ACCOUNT, p('BIND_MOUNT', '/x\0/h'), p('MOUNT_HOME', '/h'));
  // Only directory bind mounts count: a tmpfs or a file mount on the same target does not.
  ok(...ACCOUNT, p('MOUNT_TMPFS', '/h'), p('MOUNT_HOME', '/h'));
  ok(...ACCOUNT, p('BIND_MOUNT_FILE', '/x\0/h'), p('MOUNT_HOME', '/h'));
  ok(...ACCOUNT, p('MOUNT_HOME', '/h'), p('MOUNT_HOME', '/i'));
});

test('MOUNT_TMP_TMPFS: options may be empty, once; MOUNT_TMP_TMPFS_EXEC needs it earlier', () => {
  assert.equal(ok(...ACCOUNT, p('MOUNT_TMP_TMPFS')).topLevel?.isolation.mountTmpTmpfs, '');
  fails('duplicate', 'MOUNT_TMP_TMPFS', p('MOUNT_TMP_TMPFS'), p('MOUNT_TMP_TMPFS'));
  fails('misplaced', 'MOUNT_TMP_TMPFS_EXEC', p('MOUNT_TMP_TMPFS_EXEC'));
  fails('duplicate', 'MOUNT_TMP_TMPFS_EXEC', p('MOUNT_TMP_TMPFS'), p('MOUNT_TMP_TMPFS_EXEC'), p('MOUNT_TMP_TMPFS_EXEC'));
});

test('MOUNT_TMPFS and MOUNT_EMPTY: absolute, not /tmp, writable or not', () => {
  const m = ok(...ACCOUNT, p('MOUNT_TMPFS', '/a'), p('MOUNT_EMPTY', '/b')).topLevel?.isolation.mounts;
  assert.deepEqual(m, [
    { kind: 'tmpfs', packet: 'MOUNT_TMPFS', target: '/a', writable: true, optional: false },
    { kind: 'tmpfs', packet: 'MOUNT_EMPTY', target: '/b', writable: false, optional: false },
  ]);
  fails('malformed', 'MOUNT_TMPFS', p('MOUNT_TMPFS', '/tmp'));
  fails('malformed', 'MOUNT_EMPTY', p('MOUNT_EMPTY', 'rel'));
});

test('MOUNT_NAMED_TMPFS: name\\0/target', () => {
  assert.deepEqual(ok(...ACCOUNT, p('MOUNT_NAMED_TMPFS', 'shm-1\0/dev/shm')).topLevel?.isolation.mounts,
    [{ kind: 'named-tmpfs', packet: 'MOUNT_NAMED_TMPFS', name: 'shm-1', target: '/dev/shm', optional: false }]);
  for (const bad of ['shm', 'bad name\0/t', '\0/t', 'n\0rel', 'n\0/t\0x']) fails('malformed', 'MOUNT_NAMED_TMPFS', p('MOUNT_NAMED_TMPFS', bad));
});

test('bind mounts: six kinds, host: or container: sources, source\\0target both absolute', () => {
  const kinds = ['BIND_MOUNT', 'BIND_MOUNT_RW', 'BIND_MOUNT_EXEC', 'BIND_MOUNT_RW_EXEC', 'BIND_MOUNT_FILE', 'BIND_MOUNT_FILE_EXEC'] as const;
  const m = ok(...ACCOUNT, ...kinds.map((k) => p(k, '/s\0/t'))).topLevel!.isolation.mounts;
  assert.deepEqual(m.map((x) => x.kind === 'bind' && [x.packet, x.writable, x.exec, x.file]), [
    ['BIND_MOUNT', false, false, false],
    ['BIND_MOUNT_RW', true, false, false],
    ['BIND_MOUNT_EXEC', false, true, false],
    ['BIND_MOUNT_RW_EXEC', true, true, false],
    ['BIND_MOUNT_FILE', false, false, true],
    ['BIND_MOUNT_FILE_EXEC', false, true, true],
  ]);
  const [host, container] = ok(...ACCOUNT, p('BIND_MOUNT', 'host:/a\0/b'), p('BIND_MOUNT', 'container:/c\0/d')).topLevel!.isolation.mounts;
  assert.deepEqual(host, { kind: 'bind', packet: 'BIND_MOUNT', source: '/a', sourceIn: 'host', target: '/b', writable: false, exec: false, file: false, optional: false });
  assert.equal(container?.kind === 'bind' && `${container.sourceIn}:${container.source}`, 'container:/c');
  for (const bad of ['/a', 'a\0/b', '/a\0b', '/a\0/b\0c', 'container:a\0/b', 'host:\0/b', '\0/b']) {
    fails('malformed', 'BIND_MOUNT', p('BIND_MOUNT', bad));
  }
});

test('WRITE_FILE: /path\\0contents (no separator: empty file); SYMLINK: target\\0/linkpath', () => {
  const m = ok(...ACCOUNT, p('WRITE_FILE', '/etc/x\0hello'), p('WRITE_FILE', '/etc/y'), p('SYMLINK', 'usr/bin\0/bin')).topLevel!.isolation.mounts;
  assert.deepEqual(m, [
    { kind: 'write-file', packet: 'WRITE_FILE', path: '/etc/x', contents: 'hello', optional: false },
    { kind: 'write-file', packet: 'WRITE_FILE', path: '/etc/y', contents: '', optional: false },
    { kind: 'symlink', packet: 'SYMLINK', target: 'usr/bin', linkPath: '/bin', optional: false },
  ]);
  fails('malformed', 'WRITE_FILE', p('WRITE_FILE', 'rel\0x'));
  fails('malformed', 'WRITE_FILE', p('WRITE_FILE', '/p\0a\0b'));
  fails('malformed', 'SYMLINK', p('SYMLINK', '\0/bin'));
  fails('malformed', 'SYMLINK', p('SYMLINK', 'x\0bin'));
  fails('malformed', 'SYMLINK', p('SYMLINK', 'x'));
});

test('OPTIONAL marks the latest bind mount or WRITE_FILE of the current options', () => {
  for (const k of ['BIND_MOUNT', 'BIND_MOUNT_RW', 'BIND_MOUNT_EXEC', 'BIND_MOUNT_RW_EXEC', 'BIND_MOUNT_FILE'] as const) {
    const m = ok(...ACCOUNT, p(k, '/s\0/t'), p('OPTIONAL')).topLevel!.isolation.mounts;
    assert.equal(m[0]?.optional, true, k);
  }
  const w = ok(...ACCOUNT, p('BIND_MOUNT', '/s\0/t'), p('WRITE_FILE', '/f\0x'), p('OPTIONAL')).topLevel!.isolation.mounts;
  assert.deepEqual(w.map((x) => x.optional), [false, true]);
  fails('misplaced', 'OPTIONAL', ...ACCOUNT, p('OPTIONAL'));
  fails('misplaced', 'OPTIONAL', p('OPTIONAL'));
  fails('misplaced', 'OPTIONAL', ...ACCOUNT, p('BIND_MOUNT_FILE_EXEC', '/s\0/t'), p('OPTIONAL'));
  fails('misplaced', 'OPTIONAL', ...ACCOUNT, p('SYMLINK', 'a\0/b'), p('OPTIONAL'));
  fails('misplaced', 'OPTIONAL', ...ACCOUNT, p('BIND_MOUNT', '/s\0/t'), p('SERVICE', 'sftp'), p('OPTIONAL'));
  fails('malformed', 'OPTIONAL', ...ACCOUNT, p('BIND_MOUNT', '/s\0/t'), p('OPTIONAL', 'x'));
});

test('OPTIONAL looks back only to mount packets, as the original does', () => {
  // Packets in between that are not mounts do not matter...
  const m = ok(...ACCOUNT, p('BIND_MOUNT', '/s\0/t'), p('SETENV', 'A=1'), p('OPTIONAL')).topLevel!.isolation.mounts;
  assert.equal(m[0]?.optional, true);
  // ...and the mark lands on the latest mount of the current options, whatever made it.
  const t = ok(...ACCOUNT, p('BIND_MOUNT', '/s\0/t'), p('MOUNT_TMPFS', '/x'), p('OPTIONAL')).topLevel!.isolation.mounts;
  assert.deepEqual(t.map((x) => x.optional), [false, true]);
  const s = ok(...ACCOUNT, p('BIND_MOUNT', '/s\0/t'), p('SERVICE', 'sftp'), p('MOUNT_TMPFS', '/x'), p('OPTIONAL'));
  assert.equal(s.services.get('sftp')?.isolation.mounts[0]?.optional, true);
});

test('TMPFS_DIRS_READABLE needs a mount-namespace option earlier; may repeat', () => {
  fails('misplaced', 'TMPFS_DIRS_READABLE', p('TMPFS_DIRS_READABLE'));
  fails('misplaced', 'TMPFS_DIRS_READABLE', ...ACCOUNT, p('TMPFS_DIRS_READABLE'));
  fails('misplaced', 'TMPFS_DIRS_READABLE', ...ACCOUNT, p('USER_NAMESPACE'), p('TMPFS_DIRS_READABLE'));
  for (const before of [p('MOUNT_PROC'), p('MOUNT_ROOT_TMPFS'), p('PIVOT_ROOT', '/r'), p('MOUNT_TMP_TMPFS'), p('MOUNT_TMPFS', '/x'), p('MOUNT_LISTEN_STREAM', '/s')]) {
    ok(...ACCOUNT, before, p('TMPFS_DIRS_READABLE'), p('TMPFS_DIRS_READABLE'));
  }
  fails('malformed', 'TMPFS_DIRS_READABLE', p('MOUNT_PROC'), p('TMPFS_DIRS_READABLE', 'x'));
});

test('MOUNT_LISTEN_STREAM: an absolute path before the first NUL, once', () => {
  fails('malformed', 'MOUNT_LISTEN_STREAM', p('MOUNT_LISTEN_STREAM', 'rel\0x'));
  fails('duplicate', 'MOUNT_LISTEN_STREAM', p('MOUNT_LISTEN_STREAM', '/a'), p('MOUNT_LISTEN_STREAM', '/b'));
});

test('CHROOT: absolute, once; CGROUP: a name, once', () => {
  fails('malformed', 'CHROOT', p('CHROOT', 'jail'));
  fails('duplicate', 'CHROOT', p('CHROOT', '/a'), p('CHROOT', '/b'));
  fails('malformed', 'CGROUP', p('CGROUP'));
  fails('malformed', 'CGROUP', p('CGROUP', 'a/b'));
  fails('malformed', 'CGROUP', p('CGROUP', 'a\0b'));
  fails('duplicate', 'CGROUP', p('CGROUP', 'a'), p('CGROUP', 'b'));
});

test('CGROUP_SET and CGROUP_XATTR: controller.attribute=value, repeatable', () => {
  for (const name of ['CGROUP_SET', 'CGROUP_XATTR'] as const) {
    const r = ok(...ACCOUNT, p(name, 'memory.max=1G'), p(name, 'io.bfq.weight=a=b'));
    const list = name === 'CGROUP_SET' ? r.topLevel!.isolation.cgroupSet : r.topLevel!.isolation.cgroupXattr;
    assert.deepEqual(list, [{ name: 'memory.max', value: '1G' }, { name: 'io.bfq.weight', value: 'a=b' }]);
    for (const bad of ['cgroup.procs=1', 'memory.max=', 'memory.max=a/b', 'Memory.max=1', 'memory=1', 'memory.=1', '.max=1', 'memory.max', 'cpu1.max=1', 'memory..max=1']) {
      fails('malformed', name, p(name, bad));
    }
  }
});

test('REAL_UID_GID: after a non-empty UID_GID; one or two u32; not zero; once', () => {
  assert.deepEqual(ok(...ACCOUNT, p('REAL_UID_GID', encodeU32(7))).topLevel?.isolation.realUidGid, { uid: 7 });
  assert.deepEqual(ok(...ACCOUNT, p('REAL_UID_GID', encodeU32(0, 9))).topLevel?.isolation.realUidGid, { uid: 0, gid: 9 });
  fails('misplaced', 'REAL_UID_GID', p('REAL_UID_GID', encodeU32(7)));
  fails('misplaced', 'REAL_UID_GID', ids(0, 0), p('REAL_UID_GID', encodeU32(7)));
  for (const bad of [Buffer.alloc(0), Buffer.alloc(3, 1), Buffer.alloc(6, 1), Buffer.alloc(12, 1), encodeU32(0), encodeU32(0, 0)]) {
    fails('malformed', 'REAL_UID_GID', ids(1, 1), p('REAL_UID_GID', bad));
  }
  fails('duplicate', 'REAL_UID_GID', ids(1, 1), p('REAL_UID_GID', encodeU32(7)), p('REAL_UID_GID', encodeU32(7)));
});

test('MAPPED_UID_GID needs UID_GID and USER_NAMESPACE; MAPPED_REAL_UID_GID needs REAL_UID_GID', () => {
  assert.equal(ok(...ACCOUNT, p('USER_NAMESPACE'), p('MAPPED_UID_GID', encodeU32(1000))).topLevel?.isolation.mappedUid, 1000);
  fails('misplaced', 'MAPPED_UID_GID', ...ACCOUNT, p('MAPPED_UID_GID', encodeU32(1000)));
  fails('misplaced', 'MAPPED_UID_GID', p('USER_NAMESPACE'), p('MAPPED_UID_GID', encodeU32(1000)));
  fails('malformed', 'MAPPED_UID_GID', ...ACCOUNT, p('USER_NAMESPACE'), p('MAPPED_UID_GID', encodeU32(0)));
  fails('malformed', 'MAPPED_UID_GID', ...ACCOUNT, p('USER_NAMESPACE'), p('MAPPED_UID_GID', encodeU16(5)));
  fails('duplicate', 'MAPPED_UID_GID', ...ACCOUNT, p('USER_NAMESPACE'), p('MAPPED_UID_GID', encodeU32(1)), p('MAPPED_UID_GID', encodeU32(1)));
  assert.equal(ok(...ACCOUNT, p('USER_NAMESPACE'), p('REAL_UID_GID', encodeU32(5)), p('MAPPED_REAL_UID_GID', encodeU32(5))).topLevel?.isolation.mappedRealUid, 5);
  fails('misplaced', 'MAPPED_REAL_UID_GID', ...ACCOUNT, p('USER_NAMESPACE'), p('MAPPED_REAL_UID_GID', encodeU32(5)));
  fails('misplaced', 'MAPPED_REAL_UID_GID', ...ACCOUNT, p('USER_NAMESPACE'), p('REAL_UID_GID', encodeU32(0, 5)), p('MAPPED_REAL_UID_GID', encodeU32(5)));
});

test('MAX_INOTIFY needs USER_NAMESPACE; two u32', () => {
  fails('misplaced', 'MAX_INOTIFY', ...ACCOUNT, p('MAX_INOTIFY', encodeU32(1, 2)));
  fails('malformed', 'MAX_INOTIFY', p('USER_NAMESPACE'), p('MAX_INOTIFY', encodeU32(1)));
  assert.deepEqual(ok(...ACCOUNT, p('USER_NAMESPACE'), p('MAX_INOTIFY', encodeU32(1, 2)), p('MAX_INOTIFY', encodeU32(3, 4))).topLevel?.isolation.maxInotify, { instances: 3, watches: 4 });
});

test('stderr: STDERR_PATH or STDERR_NULL, not both; STDERR_PATH_JAILED is jailed', () => {
  assert.deepEqual(ok(...ACCOUNT, p('STDERR_PATH_JAILED', '/e')).topLevel?.isolation.stderrPath, { path: '/e', jailed: true });
  fails('misplaced', 'STDERR_PATH', p('STDERR_NULL'), p('STDERR_PATH', '/e'));
  fails('duplicate', 'STDERR_NULL', p('STDERR_PATH', '/e'), p('STDERR_NULL'));
  fails('duplicate', 'STDERR_NULL', p('STDERR_NULL'), p('STDERR_NULL'));
  fails('duplicate', 'STDERR_PATH_JAILED', p('STDERR_PATH', '/e'), p('STDERR_PATH_JAILED', '/f'));
  fails('malformed', 'STDERR_PATH', p('STDERR_PATH', 'e'));
  fails('malformed', 'STDERR_NULL', p('STDERR_NULL', 'x'));
});

test('security flags: no payload, once', () => {
  for (const name of ['STDERR_POND', 'SIGKILL', 'FORBID_USER_NS', 'FORBID_MULTICAST', 'FORBID_BIND', 'ALLOW_PTRACE', 'CAP_SYS_RESOURCE'] as const) {
    assert.deepEqual(ok(...ACCOUNT, p(name)).topLevel?.isolation.packets, [name]);
    fails('malformed', name, p(name, 'x'));
    fails('duplicate', name, p(name), p(name));
  }
});

test('isolation in a partition is that partition\'s, not the top level\'s', () => {
  const r = ok(...ACCOUNT, p('SERVICE', 'sftp'), p('CHROOT', '/j'));
  assert.deepEqual(r.topLevel?.isolation.packets, []);
  assert.deepEqual(r.services.get('sftp')?.isolation.packets, ['CHROOT']);
});

// ---------------------------------------------------------------- accepted without effect

test('packets the original parses without effect: checked, then listed in `ignored`', () => {
  const r = ok(
    p('TIMEOUT', encodeU32(30)), p('LISTENER_TAG', 'l'), p('POOL', 'p'), p('CANONICAL_HOST', 'h'), p('LIKE_HOST', 'h'),
    p('STATS_TAG', 's'), p('ANALYTICS_ID', ''), p('GENERATOR', 'gen-1'), p('DEFER'), p('ERROR_DOCUMENT', 'x'),
    p('PREVIOUS', 'x'), p('TRANSPARENT', 'x'), p('EXPIRES_RELATIVE', encodeU32(5)), p('EXPIRES_RELATIVE_WITH_QUERY', encodeU32(5)),
    p('VALIDATE_MTIME', '12345678/p'), p('READ_FILE', '/f'), p('TEST_PATH', '/t'), p('PROBE_PATH_SUFFIXES'), p('PROBE_SUFFIX', '.html'),
  );
  assert.deepEqual(r.ignored, [
    'TIMEOUT', 'LISTENER_TAG', 'POOL', 'CANONICAL_HOST', 'LIKE_HOST', 'STATS_TAG', 'ANALYTICS_ID', 'GENERATOR', 'DEFER',
    'ERROR_DOCUMENT', 'PREVIOUS', 'TRANSPARENT', 'EXPIRES_RELATIVE', 'EXPIRES_RELATIVE_WITH_QUERY', 'VALIDATE_MTIME',
    'READ_FILE', 'TEST_PATH', 'PROBE_PATH_SUFFIXES', 'PROBE_SUFFIX',
  ]);
  assert.equal(r.topLevel, undefined);
});

test('their rules still hold', () => {
  fails('malformed', 'TIMEOUT', p('TIMEOUT', encodeU16(30)));
  fails('malformed', 'LISTENER_TAG', p('LISTENER_TAG'));
  fails('duplicate', 'LISTENER_TAG', p('LISTENER_TAG', 'a'), p('LISTENER_TAG', 'b'));
  fails('malformed', 'POOL', p('POOL'));
  fails('malformed', 'CANONICAL_HOST', p('CANONICAL_HOST'));
  fails('duplicate', 'LIKE_HOST', p('LIKE_HOST', 'a'), p('LIKE_HOST', 'b'));
  fails('duplicate', 'STATS_TAG', p('STATS_TAG', 'a'), p('STATS_TAG', 'b'));
  fails('malformed', 'GENERATOR', p('GENERATOR', 'a b'));
  fails('malformed', 'DEFER', p('DEFER', 'x'));
  fails('malformed', 'VALIDATE_MTIME', p('VALIDATE_MTIME', '12345678/'));
  fails('malformed', 'VALIDATE_MTIME', p('VALIDATE_MTIME', '12345678xp'));
  fails('malformed', 'VALIDATE_MTIME', p('VALIDATE_MTIME', '12345678/p\0'));
  fails('duplicate', 'READ_FILE', p('READ_FILE', '/a'), p('READ_FILE', '/b'));
  fails('malformed', 'READ_FILE', p('READ_FILE', 'a'));
  fails('duplicate', 'TEST_PATH', p('TEST_PATH', '/a'), p('TEST_PATH', '/b'));
});

test('MAX_AGE: 4 bytes, only while no mount packet has come since BEGIN', () => {
  assert.deepEqual(ok(p('MAX_AGE', encodeU32(60))).ignored, ['MAX_AGE']);
  assert.deepEqual(ok(p('STATUS', encodeU16(404)), p('MAX_AGE', encodeU32(60))).ignored, ['MAX_AGE']);
  fails('misplaced', 'MAX_AGE', ...ACCOUNT, p('BIND_MOUNT', '/a\0/b'), p('MAX_AGE', encodeU32(60)));
  fails('misplaced', 'MAX_AGE', ...ACCOUNT, p('SYMLINK', 'a\0/b'), p('MAX_AGE', encodeU32(60)));
  fails('malformed', 'MAX_AGE', p('MAX_AGE', encodeU16(60)));
});

test('EXPIRES_RELATIVE: 4 bytes; a second one only after a zero', () => {
  ok(p('EXPIRES_RELATIVE', encodeU32(0)), p('EXPIRES_RELATIVE', encodeU32(5)));
  fails('duplicate', 'EXPIRES_RELATIVE', p('EXPIRES_RELATIVE', encodeU32(5)), p('EXPIRES_RELATIVE', encodeU32(5)));
  fails('duplicate', 'EXPIRES_RELATIVE_WITH_QUERY', p('EXPIRES_RELATIVE_WITH_QUERY', encodeU32(5)), p('EXPIRES_RELATIVE_WITH_QUERY', encodeU32(5)));
  fails('malformed', 'EXPIRES_RELATIVE', p('EXPIRES_RELATIVE', encodeU16(5)));
});

test('PROBE_PATH_SUFFIXES needs TEST_PATH and at least one PROBE_SUFFIX; at most 16 suffixes', () => {
  fails('misplaced', 'PROBE_PATH_SUFFIXES', p('PROBE_PATH_SUFFIXES'));
  fails('misplaced', 'PROBE_PATH_SUFFIXES', p('TEST_PATH', '/t'), p('PROBE_PATH_SUFFIXES'), p('PROBE_PATH_SUFFIXES'));
  fails('misplaced', 'PROBE_SUFFIX', p('PROBE_SUFFIX', '.x'));
  fails('incomplete', 'PROBE_PATH_SUFFIXES', p('TEST_PATH', '/t'), p('PROBE_PATH_SUFFIXES'));
  fails('malformed', 'PROBE_SUFFIX', p('TEST_PATH', '/t'), p('PROBE_PATH_SUFFIXES'), p('PROBE_SUFFIX', 'a/b'));
  const sixteen = Array.from({ length: 16 }, () => p('PROBE_SUFFIX', '.x'));
  ok(p('TEST_PATH', '/t'), p('PROBE_PATH_SUFFIXES'), ...sixteen);
  fails('too-many', 'PROBE_SUFFIX', p('TEST_PATH', '/t'), p('PROBE_PATH_SUFFIXES'), ...sixteen, p('PROBE_SUFFIX', '.x'));
});

test('packets the original skips without looking are accepted and not listed', () => {
  const skipped = ['DEFLATED', 'DIRECT_ADDRESSING', 'VARY', 'INVALIDATE', 'WIDGET_INFO', 'DUMP_HEADERS', 'AUTO_GZIPPED', 'AUTO_DEFLATE', 'CACHE_TAG', 'AUTO_BROTLI_PATH'] as const;
  const r = ok(...skipped.map((n) => p(n, '\0\xff anything')));
  assert.deepEqual(r.ignored, []);
  assert.equal(r.topLevel, undefined);
});

// ---------------------------------------------------------------- refused packets

test('request packets in a response are refused', () => {
  const names = ['PARAM', 'REMOTE_HOST', 'WIDGET_TYPE', 'USER_AGENT', 'ARGS', 'QUERY_STRING', 'LOCAL_ADDRESS', 'LOCAL_ADDRESS_STRING',
    'AUTHORIZATION', 'UA_CLASS', 'SUFFIX', 'LOGIN', 'CRON', 'PASSWORD', 'ALT_HOST', 'CHAIN_HEADER', 'AUTH_TOKEN', 'PLAN', 'PEEK'] as const;
  for (const name of names) fails('request-packet', name, p(name));
});

test('DOMAIN and DELEGATE are deprecated and refused', () => {
  fails('deprecated', 'DOMAIN', p('DOMAIN', 'x'));
  fails('deprecated', 'DELEGATE', p('DELEGATE', 'x'));
});

test('everything else is an unknown packet: USER, HTTP and address packets, EXPAND_*, unassigned numbers', () => {
  for (const name of ['USER', 'HOST', 'URI', 'PATH', 'HTTP', 'CGI', 'EXPAND_PATH', 'EXPAND_SETENV', 'REFENCE', 'JAILCGI', 'WANT', 'SESSION', 'REALM', 'FILTER', 'NON_BLOCKING', 'BENEATH'] as const) {
    fails('unknown', name, p(name, 'x'));
  }
  for (const n of [0, 25, 287, 1000, 0xffff]) fails('unknown', `#${n}`, p(n));
});

test('an error names the rule and the packet in its message', () => {
  const e = fails('duplicate', 'HOME', p('HOME', '/a'), p('HOME', '/b'));
  assert.match(e.message, /duplicate HOME packet/);
  assert.match(fails('unknown', 'PATH', p('PATH', '/x')).message, /PATH.*unknown/);
});
