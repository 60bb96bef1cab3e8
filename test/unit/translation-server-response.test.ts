// What the translation server answers, fed through the client's own decoder and parser
// (src/translation/codec.ts, src/translation/response.ts): every response must be one lukko
// accepts and must mean what the user file says.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createLogger } from '../../src/log/logger.ts';
import { ResponseDecoder } from '../../src/translation/codec.ts';
import { TranslationError } from '../../src/translation/errors.ts';
import { RLIM_INFINITY } from '../../src/translation/rlimits.ts';
import { isExecAllowed, isPasswordless, isRejected, isSftpAllowed, isSftpOnly, parseLoginResponse } from '../../src/translation/response.ts';
import type { TranslationResponse } from '../../src/translation/response.ts';
import { DEFAULT_PARAMS, hashPassword } from '../../src/translation-server/password-hash.ts';
import { NO_PASSWORD_SET, NO_SUCH_USER, WRONG_PASSWORD, buildAccountResponse, buildRejection } from '../../src/translation-server/response-builder.ts';
import { TranslationServer } from '../../src/translation-server/server.ts';
import { parseUserDb } from '../../src/translation-server/user-db.ts';
import { UsersFile, commonParams, compileUserDb } from '../../src/translation-server/users-file.ts';

const FAST = { ln: 10, r: 8, p: 1 };
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBrF6w7YJ6pgFoO6kXdlv/hA/hSUtAXoBUsDthENj8hK tv';

/** Bytes → the client's view, or its error. */
function decode(bytes: Buffer): TranslationResponse | TranslationError {
  const d = new ResponseDecoder().push(bytes);
  if (d.kind === 'malformed') return d.error;
  assert.equal(d.kind, 'complete', 'the response is not complete');
  if (d.kind !== 'complete') assert.fail();
  return parseLoginResponse(d.packets);
}

function accepted(bytes: Buffer): TranslationResponse {
  const r = decode(bytes);
  if (r instanceof TranslationError) assert.fail(`lukko refuses the response: ${r.rule}: ${r.message}`);
  return r;
}

function responseFor(ini: string, user = 'alice'): Buffer {
  const account = parseUserDb(ini, 'users.ini').accounts.get(user);
  assert.ok(account);
  return buildAccountResponse(account);
}

const MINIMAL = '[alice]\nuid = 1000\ngid = 1000\nhome = /home/alice\n';

test('rejections: 404 is the spec\'s TV4 byte for byte; 403 with a message', () => {
  assert.equal(NO_SUCH_USER.toString('hex'), '01000100030200050094010c00bc004e6f2073756368207573657200000200');
  for (const [bytes, status, message] of [[NO_SUCH_USER, 404, 'No such user'], [WRONG_PASSWORD, 403, 'Wrong password'], [NO_PASSWORD_SET, 403, 'No password set for this account'], [buildRejection(400, 'x'), 400, 'x']] as const) {
    const r = accepted(bytes);
    assert.equal(isRejected(r), true);
    assert.equal(r.status, status);
    assert.equal(r.message, message);
    assert.equal(r.protocolVersion, 3);
    assert.equal(r.topLevel, undefined);
  }
});

test('a minimal account is the spec\'s TV6 (with version 3 in BEGIN)', () => {
  const bytes = responseFor(`${MINIMAL}shell = /bin/bash\n`);
  const tv6 = '000001000800a500e8030000e80300000b0043002f686f6d652f616c6963650900be002f62696e2f6261736800000200';
  assert.equal(bytes.toString('hex'), `0100010003${tv6.slice(8)}`);
  const r = accepted(bytes);
  assert.deepEqual(r.topLevel?.uidGid, { uid: 1000, gid: 1000, groups: [] });
  assert.equal(r.topLevel?.home, '/home/alice');
  assert.equal(r.topLevel?.shell, '/bin/bash');
  assert.equal(isExecAllowed(r), true);
  assert.equal(isSftpAllowed(r), true);
  assert.equal(isPasswordless(r), false);
});

test('no_password = sftp is the spec\'s TV10 byte for byte', () => {
  assert.equal(responseFor(`${MINIMAL}no_password = sftp\n`).toString('hex'),
    '01000100030400f400736674700800a500e8030000e80300000b0043002f686f6d652f616c69636500000200');
  const r = accepted(responseFor(`${MINIMAL}no_password = true\n`));
  assert.equal(r.noPassword, 'unrestricted');
  assert.equal(isPasswordless(r), true);
  assert.equal(isSftpOnly(r), false);
});

test('every key of the user file arrives as lukko understands it', () => {
  const r = accepted(responseFor(`
[alice]
uid = 2001
gid = 2001
groups = 27,100
home = /home/alice
shell = /bin/bash
authorized_keys[] = ${KEY}
authorized_keys[] = no-pty ${KEY}
no_home_authorized_keys = true
sftp_only = true
no_password = sftp
setenv[] = LANG=C.UTF-8
setenv[] = TZ=UTC
umask = 027
rlimits = n1024 u200 Hv!
no_new_privs = true
child_tag[] = customer-42
child_tag[] = web
chdir = /home/alice/www
user_namespace = true
pid_namespace = true
network_namespace = true
ipc_namespace = true
uts_hostname = alice
mount_root_tmpfs = true
mount_proc = true
mount_dev = true
mount_home = /home/alice
mount_tmp_tmpfs = size=64M
bind_mount[] = /usr
bind_mount_rw[] = /srv/alice /srv
bind_mount_exec[] = /opt/tools /opt
bind_mount_rw_exec[] = /srv/alice/bin /srv/bin
chroot = /srv/jail
cgroup = lukko-alice
cgroup_set[] = pids.max=100

[alice:sftp]
execute = /usr/lib/openssh/sftp-server
uid = 3001
network_namespace = false

[alice:git-upload-pack]
`));
  assert.equal(isRejected(r), false);
  assert.equal(r.token, 'sftp-only');
  assert.equal(r.noPassword, 'sftp');
  assert.equal(r.authorizedKeys, `${KEY}\nno-pty ${KEY}\n`);
  assert.equal(r.noHomeAuthorizedKeys, true);
  assert.equal(isSftpOnly(r), true);
  assert.equal(isExecAllowed(r), false);
  const t = r.topLevel!;
  assert.deepEqual(t.uidGid, { uid: 2001, gid: 2001, groups: [27, 100] });
  assert.equal(t.home, '/home/alice');
  assert.equal(t.shell, '/bin/bash');
  assert.equal(t.execute, undefined);
  assert.equal(t.chdir, '/home/alice/www');
  assert.equal(t.umask, 0o027);
  assert.deepEqual(t.rlimits?.get('NOFILE'), { soft: 1024n, hard: 1024n });
  assert.deepEqual(t.rlimits?.get('AS'), { hard: RLIM_INFINITY });
  assert.equal(t.noNewPrivs, true);
  assert.deepEqual(t.setenv, ['LANG=C.UTF-8', 'TZ=UTC']);
  assert.deepEqual(t.childTags, ['customer-42', 'web']);
  const i = t.isolation;
  assert.equal(i.userNamespace, true);
  assert.deepEqual(i.pidNamespace, { kind: 'new' });
  assert.deepEqual(i.networkNamespace, { kind: 'new' });
  assert.equal(i.ipcNamespace, true);
  assert.equal(i.utsHostname, 'alice');
  assert.equal(i.mountRootTmpfs, true);
  assert.equal(i.mountProc, true);
  assert.equal(i.mountDev, true);
  assert.equal(i.mountTmpTmpfs, 'size=64M');
  assert.equal(i.chroot, '/srv/jail');
  assert.equal(i.cgroup, 'lukko-alice');
  assert.deepEqual(i.cgroupSet, [{ name: 'pids.max', value: '100' }]);
  assert.deepEqual(i.mounts.map((m) => (m.kind === 'bind' ? `${m.packet} ${m.source} ${m.target} w=${m.writable} x=${m.exec}` : `${m.packet} ${'source' in m ? m.source : ''} ${'target' in m ? m.target : ''}`)), [
    'MOUNT_HOME /home/alice /home/alice',
    'BIND_MOUNT /usr /usr w=false x=false',
    'BIND_MOUNT_RW /srv/alice /srv w=true x=false',
    'BIND_MOUNT_EXEC /opt/tools /opt w=false x=true',
    'BIND_MOUNT_RW_EXEC /srv/alice/bin /srv/bin w=true x=true',
  ]);
  assert.deepEqual(i.packets, [
    'USER_NAMESPACE', 'PID_NAMESPACE', 'NETWORK_NAMESPACE', 'IPC_NAMESPACE', 'UTS_NAMESPACE', 'MOUNT_ROOT_TMPFS', 'MOUNT_PROC', 'MOUNT_DEV',
    'MOUNT_HOME', 'MOUNT_TMP_TMPFS', 'BIND_MOUNT', 'BIND_MOUNT_RW', 'BIND_MOUNT_EXEC', 'BIND_MOUNT_RW_EXEC', 'CHROOT', 'CGROUP', 'CGROUP_SET',
  ]);

  // Partitions repeat everything they inherited from the account, and change what they set.
  assert.deepEqual([...r.services.keys()], ['sftp', 'git-upload-pack']);
  const sftp = r.services.get('sftp')!;
  assert.equal(sftp.execute, '/usr/lib/openssh/sftp-server');
  assert.deepEqual(sftp.uidGid, { uid: 3001, gid: 2001, groups: [27, 100] });
  assert.equal(sftp.home, '/home/alice');
  assert.equal(sftp.isolation.networkNamespace, undefined);
  assert.equal(sftp.isolation.mountRootTmpfs, true);
  assert.deepEqual(sftp.childTags, ['customer-42', 'web']);
  const git = r.services.get('git-upload-pack')!;
  assert.deepEqual({ ...git, isolation: { ...git.isolation } }, { ...t, isolation: { ...t.isolation } });
});

test('compiling the file builds each response once and picks the dummy hash\'s cost', async () => {
  const fast = await hashPassword('a', FAST);
  const users = compileUserDb(`${MINIMAL}password = ${fast}\n[bob]\nuid = 2\ngid = 2\nhome = /b\npassword = ${fast}\n[carol]\nuid=3\ngid=3\nhome=/c\n`, 'users.ini');
  assert.deepEqual([...users.accounts.keys()], ['alice', 'bob', 'carol']);
  assert.equal(users.passwords, 2);
  assert.deepEqual(users.dummy.params, FAST);
  assert.deepEqual(users.accounts.get('carol')!.response, responseFor('[carol]\nuid=3\ngid=3\nhome=/c\n', 'carol'));
  assert.deepEqual(commonParams([]), DEFAULT_PARAMS);
  const accounts = [...parseUserDb(`${MINIMAL}password = ${fast}\n`, 'u').accounts.values()];
  assert.deepEqual(commonParams(accounts), FAST);
});

// ---------------------------------------------------------------- the server's answers

const dir = mkdtempSync(join(tmpdir(), 'lukko-ts-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const silent = createLogger({ fd: -1, mode: 'none' });

async function serverFor(text: string): Promise<TranslationServer> {
  const path = join(dir, `users-${Math.random().toString(36).slice(2)}.ini`);
  writeFileSync(path, text, { mode: 0o600 });
  return new TranslationServer({ log: silent, users: await UsersFile.open(path, silent) });
}

const ask = (user: string, password?: string, service = 'ssh') => ({ service, user, peek: false, ...(password === undefined ? {} : { password: Buffer.from(password) }) });

test('answers: lookups never reject an account; passwords are checked; every password costs one scrypt', async () => {
  const hash = await hashPassword('s3cret', FAST);
  const server = await serverFor(`${MINIMAL}password = ${hash}\n[nopw]\nuid=2\ngid=2\nhome=/n\n[free]\nuid=3\ngid=3\nhome=/f\nno_password = sftp\n`);
  const outcome = async (user: string, password?: string, service?: string): Promise<string> => (await server.answer(ask(user, password, service))).outcome;
  assert.equal(await outcome('alice'), 'account');
  assert.equal(await outcome('nopw'), 'account');
  assert.equal(await outcome('nobody'), 'no-such-user');
  assert.equal(await outcome('alice', 's3cret'), 'password-accepted');
  assert.equal(await outcome('alice', 'wrong'), 'wrong-password');
  assert.equal(await outcome('nobody', 's3cret'), 'no-such-user');
  assert.equal(await outcome('nopw', 'x'), 'no-password-set');
  assert.equal(await outcome('free', 'x'), 'password-not-needed');
  assert.equal(await outcome('alice', undefined, 'sftp'), 'unsupported-service');

  const a = await server.answer(ask('alice', 's3cret'));
  assert.equal(accepted(a.response).topLevel?.home, '/home/alice');
  assert.deepEqual((await server.answer(ask('alice'))).response, a.response);
  assert.equal(accepted((await server.answer(ask('nopw', 'x'))).response).status, 403);
  assert.equal(accepted((await server.answer(ask('alice', undefined, 'rsync'))).response).status, 400);
});

test('timing: an unknown user\'s password takes as long as a real check', async () => {
  const hash = await hashPassword('s3cret'); // the default cost, as in production
  const server = await serverFor(`${MINIMAL}password = ${hash}\n[nopw]\nuid=2\ngid=2\nhome=/n\n`);
  // Round-robin, so that a busy moment of the machine hits all three alike.
  const samples: Record<string, number[]> = { alice: [], nobody: [], nopw: [] };
  await server.answer(ask('alice', 'warm-up'));
  for (let i = 0; i < 7; i++) {
    for (const user of Object.keys(samples)) {
      const t0 = performance.now();
      await server.answer(ask(user, 'guess'));
      samples[user]!.push(performance.now() - t0);
    }
  }
  const median = (user: string): number => samples[user]!.sort((x, y) => x - y)[3]!;
  const [real, unknown, noPassword] = [median('alice'), median('nobody'), median('nopw')];
  console.log(`# median: wrong password ${real.toFixed(1)} ms, unknown user ${unknown.toFixed(1)} ms, account without password ${noPassword.toFixed(1)} ms`);
  for (const t of [unknown, noPassword]) assert.ok(t > real * 0.5 && t < real * 2, `${t} ms against ${real} ms`);
  // A lookup without a password spends nothing.
  const t0 = performance.now();
  await server.answer(ask('nobody'));
  assert.ok(performance.now() - t0 < real / 2);
});
