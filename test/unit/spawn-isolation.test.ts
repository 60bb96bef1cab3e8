// The pure parts of session isolation: a response's isolation → the container (with
// home-read-only), where HOME appears in it, the lukko-exec command line, the systemd
// properties for cgroup settings, which packets refuse a login, and the users.ini keys
// that produce them (round trip through lukko's own response parser).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { containerPath, spawnIsolation } from '../../src/spawn/isolation.ts';
import type { SpawnIsolation } from '../../src/spawn/description.ts';
import { SpawnRefused, isolationArgs } from '../../src/spawn/spawn.ts';
import { resourceProperties, unitOfCgroup, unitProperty } from '../../src/spawn/unit-limits.ts';
import { decodePackets } from '../../src/translation/codec.ts';
import { emptyExecuteOptions } from '../../src/translation/execute-options.ts';
import type { Isolation } from '../../src/translation/execute-options.ts';
import { loginFromResponse, unenforceablePackets } from '../../src/translation/login.ts';
import { parseLoginResponse } from '../../src/translation/response.ts';
import type { TranslationResponse } from '../../src/translation/response.ts';
import { buildAccountResponse } from '../../src/translation-server/response-builder.ts';
import { parseUserDb } from '../../src/translation-server/user-db.ts';

const HOME = '/srv/users/alice';

function iso(extra: Partial<Isolation>): Isolation {
  return { ...emptyExecuteOptions().isolation, packets: ['MOUNT_ROOT_TMPFS'], ...extra };
}

const bind = (source: string, target: string, writable = false, extra: object = {}) =>
  ({ kind: 'bind', source, target, inContainer: false, writable, exec: false, file: false, optional: false, ...extra }) as const;

test('containerPath: the host tree as it is, through the last bind that holds it, nowhere in an empty root, below CHROOT', () => {
  assert.equal(containerPath(HOME, undefined), HOME);
  const base: SpawnIsolation = { pidNamespace: true, ipcNamespace: false, cgroupNamespace: false, mountProc: false, mountDev: false, dirsReadable: false, mounts: [] };
  assert.equal(containerPath(HOME, base), HOME);
  assert.equal(containerPath(HOME, { ...base, root: { kind: 'tmpfs' } }), undefined);
  assert.equal(containerPath(`${HOME}/www`, { ...base, root: { kind: 'tmpfs' }, mounts: [bind('/srv/users', '/users'), bind(HOME, '/home/alice')] }), '/home/alice/www');
  assert.equal(containerPath(HOME, { ...base, root: { kind: 'tmpfs' }, mounts: [bind(HOME, '/home/alice'), bind('/srv/users', '/users')] }), '/users/alice');
  assert.equal(containerPath(HOME, { ...base, chroot: '/srv/users' }), '/alice');
  assert.equal(containerPath(HOME, { ...base, chroot: '/jail' }), undefined);
});

test('spawnIsolation: MOUNT_HOME is a writable, executable bind of HOME; a user namespace maps MAPPED_UID_GID or the uid itself', () => {
  const i = iso({
    mountRootTmpfs: true, userNamespace: true, mappedUid: 1000, pidNamespace: { kind: 'new' }, networkNamespace: { kind: 'named', name: 'blue' },
    mounts: [{ kind: 'home', packet: 'MOUNT_HOME', source: HOME, target: '/home/alice', optional: false }],
  });
  const s = spawnIsolation({ isolation: i, home: HOME, uid: 2001, gid: 2002, homeReadOnly: false })!;
  assert.deepEqual(s.userNamespace, { uid: 1000, gid: 2002 });
  assert.deepEqual(s.root, { kind: 'tmpfs' });
  assert.deepEqual(s.network, { kind: 'named', name: 'blue' });
  assert.deepEqual(s.mounts, [{ ...bind(HOME, '/home/alice', true), exec: true }]);
  const plain = spawnIsolation({ isolation: iso({ userNamespace: true, packets: ['USER_NAMESPACE'] }), home: HOME, uid: 2001, gid: 2002, homeReadOnly: false })!;
  assert.deepEqual(plain.userNamespace, { uid: 2001, gid: 2002 });
  assert.equal(spawnIsolation({ isolation: emptyExecuteOptions().isolation, home: HOME, uid: 1, gid: 1, homeReadOnly: false }), undefined);
});

test('home-read-only: binds of the home and below become read-only; a home reachable writably gets a read-only bind on top', () => {
  // No container at all: a private mount namespace with the home bound read-only onto itself.
  const none = spawnIsolation({ home: HOME, uid: 2001, gid: 2001, homeReadOnly: true })!;
  assert.deepEqual(none.mounts, [{ ...bind(HOME, HOME), exec: true }]);
  assert.equal(none.root, undefined);
  // MOUNT_HOME and a bind below the home: both read-only, nothing added.
  const i = iso({
    mountRootTmpfs: true,
    mounts: [
      { kind: 'home', packet: 'MOUNT_HOME', source: HOME, target: '/home/alice', optional: false },
      { kind: 'bind', packet: 'BIND_MOUNT_RW', source: `${HOME}/data`, target: '/data', sourceIn: 'host', writable: true, exec: false, file: false, optional: false },
      { kind: 'bind', packet: 'BIND_MOUNT_RW', source: '/srv/shared', target: '/shared', sourceIn: 'host', writable: true, exec: false, file: false, optional: false },
    ],
  });
  const s = spawnIsolation({ isolation: i, home: HOME, uid: 2001, gid: 2001, homeReadOnly: true })!;
  assert.deepEqual(s.mounts.map((m) => m.kind === 'bind' && `${m.source} ${m.writable}`), [`${HOME} false`, `${HOME}/data false`, '/srv/shared true']);
  // A parent of the home bound writable: the home goes read-only right after it.
  const parent = iso({
    mountRootTmpfs: true,
    mounts: [
      { kind: 'bind', packet: 'BIND_MOUNT_RW', source: '/srv/users', target: '/users', sourceIn: 'host', writable: true, exec: false, file: false, optional: false },
      { kind: 'symlink', packet: 'SYMLINK', target: 'users', linkPath: '/u', optional: false },
    ],
  });
  const p = spawnIsolation({ isolation: parent, home: HOME, uid: 2001, gid: 2001, homeReadOnly: true })!;
  assert.deepEqual(p.mounts[1], { ...bind(HOME, '/users/alice'), exec: true });
  assert.equal(p.mounts.length, 3);
  // Without home-read-only nothing changes.
  assert.equal(spawnIsolation({ isolation: parent, home: HOME, uid: 2001, gid: 2001, homeReadOnly: false })!.mounts.length, 2);
});

test('isolationArgs: the lukko-exec command line, in order; NUL and relative paths are refused', () => {
  const s: SpawnIsolation = {
    userNamespace: { uid: 1000, gid: 1000 }, pidNamespace: true, network: { kind: 'new' }, ipcNamespace: true, cgroupNamespace: true, hostname: 'box',
    root: { kind: 'tmpfs' }, mountProc: true, mountDev: true, tmp: { options: 'size=1M', exec: true }, dirsReadable: true,
    mounts: [
      bind('/usr', '/usr', false, { exec: true }),
      bind('/opt/x', '/x', true, { optional: true, file: true }),
      { kind: 'tmpfs', target: '/scratch', writable: true },
      { kind: 'write-file', path: '/etc/motd', contents: 'hi there', optional: true },
      { kind: 'symlink', target: 'usr/bin', linkPath: '/bin' },
    ],
    chroot: '/home',
  };
  assert.deepEqual(isolationArgs(s, { uid: 2001 }), [
    '--userns', '1000:1000', '--pid-ns', '--net-ns', '--ipc-ns', '--cgroup-ns', '--hostname', 'box', '--root-tmpfs', '--mount-proc', '--mount-dev',
    '--tmp', 'size=1M', '--tmp-exec', '--dirs-readable',
    '--bind', 'exec', '/usr', '/usr', '--bind', 'rw,file,optional', '/opt/x', '/x', '--tmpfs', 'rw', '/scratch',
    '--write-file', 'optional', '/etc/motd', 'hi there', '--symlink', 'usr/bin', '/bin', '--chroot', '/home',
  ]);
  const base: SpawnIsolation = { pidNamespace: false, ipcNamespace: false, cgroupNamespace: false, mountProc: false, mountDev: false, dirsReadable: false, mounts: [] };
  assert.throws(() => isolationArgs({ ...base, mounts: [bind('usr', '/usr')] }, { uid: 1 }), SpawnRefused);
  assert.throws(() => isolationArgs({ ...base, mounts: [{ kind: 'write-file', path: '/f', contents: 'a\0b', optional: false }] }, { uid: 1 }), SpawnRefused);
  assert.throws(() => isolationArgs({ ...base, network: { kind: 'named', name: '../x' } }, { uid: 1 }), SpawnRefused);
  assert.throws(() => isolationArgs({ ...base, userNamespace: { uid: 0, gid: 0 } }, { uid: 1 }), SpawnRefused);
});

test('unitProperty: cgroup v2 attributes as systemd properties; anything else has none', () => {
  assert.deepEqual(unitProperty('memory.max', '64M'), ['MemoryMax=64M']);
  assert.deepEqual(unitProperty('memory.max', 'max'), ['MemoryMax=infinity']);
  assert.deepEqual(unitProperty('memory.swap.max', '0'), ['MemorySwapMax=0']);
  assert.deepEqual(unitProperty('pids.max', '100'), ['TasksMax=100']);
  assert.deepEqual(unitProperty('cpu.weight', '50'), ['CPUWeight=50']);
  assert.deepEqual(unitProperty('io.weight', 'default 200'), ['IOWeight=200']);
  assert.deepEqual(unitProperty('cpu.max', '50000 100000'), ['CPUQuota=50%', 'CPUQuotaPeriodSec=100000us']);
  for (const [name, value] of [['memory.max', '1.5G'], ['pids.max', '0'], ['cpu.weight', '0'], ['cpuset.cpus', '0-1'], ['memory.oom.group', '1']] as const) {
    assert.equal(unitProperty(name, value), undefined, `${name}=${value}`);
  }
  assert.deepEqual(resourceProperties({ tasksMax: 50, memoryMax: { bytes: 1048576 }, memoryHigh: { percent: 50 }, memorySwapMax: 'infinity' }), [
    'TasksMax=50', 'MemoryHigh=50%', 'MemoryMax=1048576', 'MemorySwapMax=infinity',
  ]);
  assert.equal(unitOfCgroup('0::/system.slice/system-lukko.slice/lukko@3-127.0.0.1:22-127.0.0.1:5000.service\n'), 'lukko@3-127.0.0.1:22-127.0.0.1:5000.service');
  assert.equal(unitOfCgroup('0::/user.slice/user-0.slice/session-1.scope\n'), undefined);
  assert.equal(unitOfCgroup('4:memory:/x\n0::/\n'), undefined);
});

function response(ini: string): TranslationResponse {
  const db = parseUserDb(ini, 'users.ini');
  const bytes = buildAccountResponse(db.accounts.get('alice')!);
  const framed = decodePackets(bytes, { eof: true });
  assert.equal(framed.kind, 'complete');
  const r = parseLoginResponse(framed.kind === 'complete' ? framed.packets : []);
  assert.ok(!(r instanceof Error), String(r));
  return r as TranslationResponse;
}

const ALICE = '[alice]\nuid = 2001\ngid = 2001\nhome = /home/alice\n';

test('users.ini isolation keys reach lukko\'s parser as the packets they name, in an order it accepts', () => {
  const r = response(`${ALICE}user_namespace = true
mapped_uid = 1000
pid_namespace = true
network_namespace_name = blue
cgroup_namespace = true
pivot_root = /srv/root
mount_dev = true
mount_tmp_tmpfs = size=1M
mount_tmp_tmpfs_exec = true
bind_mount[] = /opt/a /a optional
bind_mount_file[] = /etc/hosts /etc/hosts
bind_mount_file_exec[] = /bin/busybox /bin/sh
mount_tmpfs[] = /scratch
mount_empty[] = /empty
write_file[] = /etc/motd hello there
symlink[] = usr/bin /bin2
tmpfs_dirs_readable = true
`);
  const i = r.topLevel!.isolation;
  assert.equal(i.mappedUid, 1000);
  assert.deepEqual(i.networkNamespace, { kind: 'named', name: 'blue' });
  assert.equal(i.pivotRoot, '/srv/root');
  assert.equal(i.mountTmpTmpfsExec, true);
  assert.equal(i.tmpfsDirsReadable, true);
  assert.deepEqual(i.mounts.map((m) => `${m.packet}${m.optional ? ' optional' : ''}`), [
    'BIND_MOUNT optional', 'BIND_MOUNT_FILE', 'BIND_MOUNT_FILE_EXEC', 'MOUNT_TMPFS', 'MOUNT_EMPTY', 'WRITE_FILE', 'SYMLINK',
  ]);
  assert.deepEqual(unenforceablePackets(r), []);
});

test('users.ini: isolation keys that contradict each other are refused with the line', () => {
  for (const [text, re] of [
    ['mapped_uid = 1000\n', /mapped_uid needs user_namespace/],
    ['network_namespace = true\nnetwork_namespace_name = x\n', /exclude each other/],
    ['mount_root_tmpfs = true\npivot_root = /srv\n', /exclude each other/],
    ['mount_tmp_tmpfs_exec = true\n', /needs mount_tmp_tmpfs/],
    ['bind_mount_file_exec[] = /a /b optional\n', /cannot be optional/],
    ['mount_tmpfs[] = /tmp\n', /mount_tmp_tmpfs/],
  ] as const) {
    assert.throws(() => parseUserDb(`${ALICE}${text}`, 'users.ini'), re, text);
  }
});

test('which isolation refuses a login: cgroup settings only without a unit of its own, unknown attributes always', () => {
  const r = response(`${ALICE}pid_namespace = true\ncgroup = web\ncgroup_set[] = memory.max=64M\ncgroup_set[] = cpuset.cpus=0\n`);
  assert.deepEqual(unenforceablePackets(r), ['CGROUP', 'CGROUP_SET']);
  assert.deepEqual(unenforceablePackets(r, { unitLimits: true }), ['CGROUP_SET cpuset.cpus']);
  const ok = response(`${ALICE}cgroup = web\ncgroup_set[] = memory.max=64M\n`);
  const login = loginFromResponse('alice', ok, { unitLimits: true });
  assert.ok(typeof login !== 'string');
  assert.deepEqual(login.unenforceable, []);
  assert.deepEqual(login.account.spawn?.isolation?.cgroupSet, [{ name: 'memory.max', value: '64M' }]);
});

test('unit properties from two sources: the stricter value wins; incomparable ones refuse', async () => {
  const { mergeUnitProperties } = await import('../../src/spawn/unit-limits.ts');
  assert.deepEqual(mergeUnitProperties(['TasksMax=77', 'MemoryMax=1G', 'TasksMax=50', 'MemoryMax=infinity', 'MemoryMax=64M']), ['TasksMax=50', 'MemoryMax=64M']);
  assert.deepEqual(mergeUnitProperties(['CPUQuota=50%', 'CPUQuota=20%']), ['CPUQuota=20%']);
  assert.throws(() => mergeUnitProperties(['MemoryHigh=50%', 'MemoryHigh=64M']), /cannot combine 50% and 64M/);
});

test('cgroupDir: the process\'s cgroup under wherever cgroup2 is mounted', async () => {
  const { cgroupDir } = await import('../../src/spawn/unit-limits.ts');
  const self = '1:name=systemd:/x\n0::/system.slice/lukko@1.service\n';
  assert.equal(cgroupDir(self, 'cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n'), '/sys/fs/cgroup/system.slice/lukko@1.service');
  assert.equal(cgroupDir(self, 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n'), '/sys/fs/cgroup/unified/system.slice/lukko@1.service');
  assert.equal(cgroupDir(self, 'tmpfs /sys/fs/cgroup tmpfs rw 0 0\n'), undefined);
});

test('lukko.conf spawn resources: exit 78 without a unit of their own, accepted (and rendered as such) under systemd', async () => {
  const { parseConfigText } = await import('../../src/config/index.ts');
  const { unsupportedSettings } = await import('../../src/connection/unsupported.ts');
  const config = parseConfigText('listener {\n  bind "*:22"\n}\nspawn {\n  TasksMax 77\n  MemoryMax 1G\n}\n', { path: '/etc/lukko/lukko.conf' });
  const listener = config.listeners[0]!;
  assert.match(unsupportedSettings(config, listener).fatal.join(), /spawn resource limits need lukko to run as lukko@\.service/);
  assert.deepEqual(unsupportedSettings(config, listener, { unitLimits: true }).fatal, []);
  assert.deepEqual(resourceProperties(config.spawn.resources), ['TasksMax=77', 'MemoryMax=1073741824']);
});
