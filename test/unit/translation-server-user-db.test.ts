import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { hashPassword } from '../../src/translation-server/password-hash.ts';
import { USER_DB_KEYS, UserDbError, parseUserDb } from '../../src/translation-server/user-db.ts';
import type { Account, UserDb } from '../../src/translation-server/user-db.ts';

/** An OpenSSH public key line for a fresh ed25519 key. */
function sshKey(comment: string): string {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x!, 'base64url');
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]).toString('base64')} ${comment}`;
}

const KEY1 = sshKey('alice@laptop');
const KEY2 = sshKey('alice@phone');
const HASH = await hashPassword('s3cret', { ln: 10, r: 8, p: 1 });

function parse(text: string): UserDb {
  return parseUserDb(text, 'users.ini');
}

function account(db: UserDb, name: string): Account {
  const a = db.accounts.get(name);
  assert.ok(a, `no account ${name}`);
  return a;
}

/** The problems as "line: message" strings. */
function problems(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof UserDbError, String(e));
    return e.problems.map((p) => `${p.line}: ${p.message}`);
  }
  assert.fail('the file was accepted');
}

function oneProblem(text: string, line: number, re: RegExp): void {
  const list = problems(text);
  assert.equal(list.length, 1, list.join('\n'));
  assert.match(list[0]!, new RegExp(`^${line}: `), list[0]);
  assert.match(list[0]!, re);
}

const MINIMAL = '[alice]\nuid = 2001\ngid = 2001\nhome = /home/alice\n';

test('the documented example: every key of an account and a partition', () => {
  const db = parse(`
; accounts for lukko
[alice]
uid = 2001
gid = 2001
groups = 27,100
home = /home/alice
shell = /bin/bash
password = ${HASH}   ; from hash-password
authorized_keys[] = ${KEY1}
authorized_keys[] = from="10.0.0.0/8" ${KEY2}
no_home_authorized_keys = true
sftp_only = true
no_password = sftp
setenv[] = LANG=C.UTF-8
setenv[] = TZ=Europe/Berlin
umask = 027
rlimits = n1024 u200
no_new_privs = true
child_tag[] = customer-42
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
bind_mount[] = /usr/lib /usr/lib
bind_mount[] = /usr
bind_mount_rw[] = /srv/alice /srv
bind_mount_exec[] = /opt/tools /opt
bind_mount_rw_exec[] = /srv/alice/bin /srv/bin
chroot = /srv/jail
cgroup = lukko-alice
cgroup_set[] = pids.max=100
cgroup_set[] = memory.max=1G

[alice:sftp]
execute = /usr/lib/openssh/sftp-server
`);
  const a = account(db, 'alice');
  assert.equal(a.line, 3);
  assert.deepEqual(a.password?.params, { ln: 10, r: 8, p: 1 });
  assert.deepEqual(a.authorizedKeys, [KEY1, `from="10.0.0.0/8" ${KEY2}`]);
  assert.equal(a.noHomeAuthorizedKeys, true);
  assert.equal(a.sftpOnly, true);
  assert.equal(a.noPassword, 'sftp');
  const s = a.settings;
  assert.equal(s.uid, 2001);
  assert.equal(s.gid, 2001);
  assert.deepEqual(s.groups, [27, 100]);
  assert.equal(s.home, '/home/alice');
  assert.equal(s.shell, '/bin/bash');
  assert.equal(s.execute, undefined);
  assert.deepEqual(s.setenv, ['LANG=C.UTF-8', 'TZ=Europe/Berlin']);
  assert.equal(s.umask, 0o027);
  assert.equal(s.rlimits, 'n1024 u200');
  assert.equal(s.noNewPrivs, true);
  assert.deepEqual(s.childTags, ['customer-42']);
  assert.equal(s.chdir, '/home/alice/www');
  assert.deepEqual([s.userNamespace, s.pidNamespace, s.networkNamespace, s.ipcNamespace], [true, true, true, true]);
  assert.equal(s.utsHostname, 'alice');
  assert.deepEqual([s.mountRootTmpfs, s.mountProc, s.mountDev], [true, true, true]);
  assert.equal(s.mountHome, '/home/alice');
  assert.equal(s.mountTmpTmpfs, 'size=64M');
  // Parents first: /usr, /srv and /opt before /usr/lib and /srv/bin.
  assert.deepEqual(s.bindMounts.map((m) => `${m.key} ${m.source} ${m.target}`), [
    'bind_mount /usr /usr',
    'bind_mount_rw /srv/alice /srv',
    'bind_mount_exec /opt/tools /opt',
    'bind_mount /usr/lib /usr/lib',
    'bind_mount_rw_exec /srv/alice/bin /srv/bin',
  ]);
  assert.equal(s.chroot, '/srv/jail');
  assert.equal(s.cgroup, 'lukko-alice');
  assert.deepEqual(s.cgroupSet, ['pids.max=100', 'memory.max=1G']);

  // The partition starts as a copy of the account's settings.
  assert.equal(a.partitions.length, 1);
  const sftp = a.partitions[0]!;
  assert.equal(sftp.name, 'sftp');
  assert.equal(sftp.line, 42);
  assert.deepEqual({ ...sftp.settings, execute: undefined }, { ...s, execute: undefined });
  assert.equal(sftp.settings.execute, '/usr/lib/openssh/sftp-server');
  assert.deepEqual(USER_DB_KEYS.length, 46);
});

test('a minimal account, and what is left out stays unset', () => {
  const a = account(parse(MINIMAL), 'alice');
  assert.equal(a.password, undefined);
  assert.deepEqual(a.authorizedKeys, []);
  assert.equal(a.noPassword, undefined);
  assert.equal(a.sftpOnly, false);
  assert.deepEqual(a.settings.groups, []);
  assert.equal(a.settings.shell, undefined);
  assert.equal(a.settings.umask, undefined);
  assert.deepEqual(a.partitions, []);
  assert.equal(parse('; nothing\n\n# at all\n').accounts.size, 0);
});

test('user names with dots, @ and dashes stay whole (ini would nest [john.doe])', () => {
  const db = parse(`[john.doe]\nuid = 1\ngid = 1\nhome = /home/john\n[a.b.c@example.org]\nuid = 2\ngid = 2\nhome = /h\n[john.doe:sftp]\nexecute = /x\n[x-y_z]\nuid=3\ngid=3\nhome=/\n`);
  assert.deepEqual([...db.accounts.keys()], ['john.doe', 'a.b.c@example.org', 'x-y_z']);
  assert.equal(account(db, 'john.doe').partitions[0]?.settings.execute, '/x');
  assert.equal(account(db, 'john.doe').partitions[0]?.settings.home, '/home/john');
});

test('partitions: any order in the file, override and drop what the account gives', () => {
  const db = parse(`
[alice:rsync]
execute = /usr/bin/rsync
network_namespace = false
bind_mount[] =
shell =
umask = 077
uid = 3001
setenv[] = MODE=rsync

[alice]
uid = 2001
gid = 2001
home = /home/alice
shell = /bin/bash
network_namespace = true
bind_mount[] = /usr
bind_mount_rw[] = /srv
setenv[] = LANG=C
umask = 022

[alice:git-upload-pack]
setenv[] =
`);
  const a = account(db, 'alice');
  assert.deepEqual(a.partitions.map((p) => p.name), ['rsync', 'git-upload-pack']);
  const rsync = a.partitions[0]!.settings;
  assert.equal(rsync.execute, '/usr/bin/rsync');
  assert.equal(rsync.networkNamespace, false);
  assert.deepEqual(rsync.bindMounts.map((m) => m.key), ['bind_mount_rw']); // only bind_mount[] dropped
  assert.equal(rsync.shell, undefined);
  assert.equal(rsync.umask, 0o077);
  assert.equal(rsync.uid, 3001);
  assert.equal(rsync.gid, 2001);
  assert.deepEqual(rsync.setenv, ['MODE=rsync']); // a list given in a partition replaces the account's
  const git = a.partitions[1]!.settings;
  assert.deepEqual(git.setenv, []);
  assert.equal(git.networkNamespace, true);
  // The account itself is untouched.
  assert.equal(a.settings.shell, '/bin/bash');
  assert.equal(a.settings.bindMounts.length, 2);
});

test('comments, quoting and escapes as ini reads them', () => {
  const db = parse(`
# a comment
[alice]    ; the account
uid = 2001 ; trailing comment
gid = 2001 # also one
home = "/home/with space"
shell = '/bin/sh'
setenv[] = "PS1=a;b#c"
setenv[] = X=1\\;2
authorized_keys[] = "${KEY1.replace(/alice@laptop/, 'alice#laptop')}"
`);
  const a = account(db, 'alice');
  assert.equal(a.settings.uid, 2001);
  assert.equal(a.settings.gid, 2001);
  assert.equal(a.settings.home, '/home/with space');
  assert.equal(a.settings.shell, '/bin/sh');
  assert.deepEqual(a.settings.setenv, ['PS1=a;b#c', 'X=1;2']);
  assert.match(a.authorizedKeys[0]!, / alice#laptop$/);
});

test('CRLF line ends and a byte order mark', () => {
  const a = account(parse(`\uFEFF${MINIMAL.replace(/\n/g, '\r\n')}shell = /bin/sh\r\n`), 'alice');
  assert.equal(a.settings.shell, '/bin/sh');
});

test('booleans: true/false and yes/no; no_password true, sftp or false', () => {
  const a = account(parse(`${MINIMAL}no_new_privs = yes\nmount_proc = no\nsftp_only = false\nno_password = true\n`), 'alice');
  assert.equal(a.settings.noNewPrivs, true);
  assert.equal(a.settings.mountProc, false);
  assert.equal(a.sftpOnly, false);
  assert.equal(a.noPassword, 'unrestricted');
  assert.equal(account(parse(`${MINIMAL}no_password = false\n`), 'alice').noPassword, undefined);
  oneProblem(`${MINIMAL}no_new_privs = 1\n`, 5, /no_new_privs: "1" is not true or false/);
  oneProblem(`${MINIMAL}no_password = maybe\n`, 5, /no_password: "maybe" is not true or false/);
  oneProblem(`${MINIMAL}mount_tmp_tmpfs = true\nmount_proc\n`, 6, /"mount_proc" is neither "key = value"/);
});

test('mount_tmp_tmpfs: true for the defaults, or options', () => {
  assert.equal(account(parse(`${MINIMAL}mount_tmp_tmpfs = true\n`), 'alice').settings.mountTmpTmpfs, '');
  assert.equal(account(parse(`${MINIMAL}mount_tmp_tmpfs = false\n`), 'alice').settings.mountTmpTmpfs, undefined);
  oneProblem(`${MINIMAL}mount_tmp_tmpfs = size=1M mode=1777\n`, 5, /tmpfs options/);
});

test('ids: non-zero integers; root cannot log in through the file', () => {
  assert.deepEqual(problems('[root]\nuid = 0\ngid = 0\nhome = /root\n'), [
    '2: [root] uid: "0" is not a uid from 1 to 4294967294 (0 is root, which cannot log in through the translation server)',
    '3: [root] gid: "0" is not a gid from 1 to 4294967294 (0 is root, which cannot log in through the translation server)',
  ]);
  oneProblem('[a]\nuid = 1\ngid = x\nhome = /\n', 3, /gid: "x" is not a gid/);
  oneProblem('[a]\nuid = -5\ngid = 1\nhome = /\n', 2, /uid: "-5"/);
  oneProblem('[a]\nuid = 4294967295\ngid = 1\nhome = /\n', 2, /uid: "4294967295"/);
  oneProblem('[a]\nuid = 1.5\ngid = 1\nhome = /\n', 2, /uid/);
  oneProblem(`${MINIMAL}groups = 27, 0\n`, 5, /groups: group 0 \(root\)/);
  oneProblem(`${MINIMAL}groups = 27;100\n`, 5, /groups: ";" starts a comment/);
  oneProblem(`${MINIMAL}groups = ${Array.from({ length: 33 }, (_, i) => i + 1).join(',')}\n`, 5, /more than 32 groups/);
  assert.deepEqual(account(parse(`${MINIMAL}groups = 27 100,\t5\n`), 'alice').settings.groups, [27, 100, 5]);
  assert.deepEqual(account(parse(`${MINIMAL}groups =\n`), 'alice').settings.groups, []);
});

test('required keys and absolute paths', () => {
  assert.deepEqual(problems('[a]\nshell = /bin/sh\n'), ['1: [a]: uid is missing', '1: [a]: gid is missing', '1: [a]: home is missing']);
  oneProblem('[a]\nuid = 1\ngid = 1\nhome = home/a\n', 4, /home: "home\/a" is not an absolute path/);
  oneProblem(`${MINIMAL}shell = bash\n`, 5, /shell: "bash" is not an absolute path/);
  oneProblem(`${MINIMAL}chdir = www\n`, 5, /chdir/);
  oneProblem(`${MINIMAL}shell =\n`, 5, /shell: empty value/);
  oneProblem(`${MINIMAL}chroot = "/a\\u0001b"\n`, 5, /control character/);
});

test('passwords must be hashes: plain text is refused clearly', () => {
  oneProblem(`${MINIMAL}password = hunter2\n`, 5, /\[alice\] password: this looks like a plain-text password, which is refused; use a hash made by `lukko translation-server hash-password`/);
  oneProblem(`${MINIMAL}password = $6$abc$def\n`, 5, /SHA-512-crypt hash is not supported/);
  oneProblem(`${MINIMAL}password =\n`, 5, /password: empty value/);
});

test('authorized_keys: lukko\'s own parser checks every line', () => {
  oneProblem(`${MINIMAL}authorized_keys[] = ${KEY1}\nauthorized_keys[] = ssh-ed25519 AAAAnotakey x\n`, 6, /authorized_keys: /);
  oneProblem(`${MINIMAL}authorized_keys[] = ssh-foo AAAA x\n`, 5, /unknown key type "ssh-foo"/);
  oneProblem(`${MINIMAL}authorized_keys[] = ${KEY1.replace('alice@laptop', 'alice#laptop')}\n`, 5, /"#" starts a comment and would cut this value short; write \\# or quote/);
  // One key without [] is fine; two without [] are a mistake ini would hide.
  assert.deepEqual(account(parse(`${MINIMAL}authorized_keys = ${KEY1}\n`), 'alice').authorizedKeys, [KEY1]);
  oneProblem(`${MINIMAL}authorized_keys = ${KEY1}\nauthorized_keys = ${KEY2}\n`, 6, /given again \(first on line 5\); write authorized_keys\[\] = … for each value/);
});

test('the file\'s structure: sections, keys, duplicates', () => {
  oneProblem('uid = 1\n', 1, /a key outside any section/);
  oneProblem(`${MINIMAL}[bad name]\nuid = 1\n`, 5, /\[bad name\]: "bad name" is not a user name/);
  oneProblem(`${MINIMAL}[alice:scp]\nexecute = /x\n`, 5, /unknown partition "scp" \(lukko uses sftp, rsync, git-receive-pack, git-upload-pack\)/);
  oneProblem(`${MINIMAL}[bob:sftp]\nexecute = /x\n`, 5, /\[bob:sftp\]: there is no account \[bob\]/);
  oneProblem(`${MINIMAL}[alice]\nshell = /bin/sh\n`, 5, /\[alice\] appears again \(first on line 1\)/);
  oneProblem(`${MINIMAL}uid = 2002\n`, 5, /uid: given again \(first on line 2\); it takes one value/);
  oneProblem(`${MINIMAL}uid[] = 2002\n`, 5, /uid: given again/);
  oneProblem(`[a]\nuid[] = 1\ngid = 1\nhome = /\n`, 2, /uid: takes one value; write uid = …/);
  oneProblem(`${MINIMAL}shel = /bin/sh\n`, 5, /unknown key "shell?"|unknown key "shel"/);
  oneProblem(`${MINIMAL}no-new-privs = true\n`, 5, /unknown key "no-new-privs" \(did you mean no_new_privs\?\)/);
  oneProblem(`${MINIMAL}constructor = 1\n`, 5, /unknown key "constructor"/);
  oneProblem(`${MINIMAL}= 1\n`, 5, /"" is not a key/);
  oneProblem(`${MINIMAL}home2 = "/x\n`, 5, /unknown key "home2"/);
  oneProblem(`${MINIMAL}shell = "/bin/sh" ; comment\n`, 5, /a quoted value must end the line/);
  oneProblem(`${MINIMAL}shell = "/bin\\q"\n`, 5, /JSON string/);
  // The keys of a refused section are not reported one by one.
  assert.deepEqual(problems('[no way]\nuid = 1\nfoo = 2\n'), ['1: [no way]: "no way" is not a user name lukko accepts (1 to 255 of A-Z a-z 0-9 . _ @ -)']);
});

test('keys in the wrong section', () => {
  oneProblem(`${MINIMAL}execute = /bin/true\n`, 5, /\[alice\] execute: only a partition runs a program of its own/);
  oneProblem(`${MINIMAL}[alice:sftp]\npassword = ${HASH}\n`, 6, /\[alice:sftp\] password: belongs in the account's own section \[alice\]/);
  oneProblem(`${MINIMAL}[alice:sftp]\nhome =\n`, 6, /home: cannot be dropped in a partition/);
  oneProblem(`${MINIMAL}[alice:rsync]\nshell = /bin/sh\n`, 5, /an rsync partition needs execute/);
});

test('isolation settings are checked as lukko\'s parser would', () => {
  oneProblem(`${MINIMAL}mount_dev = true\n`, 1, /mount_dev needs mount_root_tmpfs/);
  oneProblem(`${MINIMAL}mount_home = /home/alice\nbind_mount[] = /srv /home/alice\n`, 1, /mount_home and a bind mount both mount \/home\/alice/);
  oneProblem(`${MINIMAL}bind_mount[] = /a /x\nbind_mount_rw[] = /b /x\n`, 1, /two bind mounts on \/x/);
  oneProblem(`${MINIMAL}bind_mount[] = /a /b /c\n`, 5, /needs SOURCE, "SOURCE TARGET" or either with "optional" after it/);
  oneProblem(`${MINIMAL}bind_mount[] = /a\nbind_mount[] = usr\n`, 6, /bind_mount: "usr" is not an absolute path/);
  oneProblem(`${MINIMAL}uts_hostname = -bad-\n`, 5, /not a host name/);
  oneProblem(`${MINIMAL}cgroup = a/b\n`, 5, /not a cgroup name/);
  oneProblem(`${MINIMAL}cgroup_set[] = cgroup.procs=1\n`, 5, /controller not "cgroup"/);
  oneProblem(`${MINIMAL}cgroup_set[] = pids.max=\n`, 5, /is not controller\.attribute=value/);
  oneProblem(`${MINIMAL}cgroup_set[] = Pids.max=1\n`, 5, /is not controller/);
  oneProblem(`${MINIMAL}setenv[] = =x\n`, 5, /"=x" is not NAME=VALUE/);
  oneProblem(`${MINIMAL}setenv[] = LANG\n`, 5, /is not NAME=VALUE/);
  oneProblem(`${MINIMAL}child_tag[] = two words\n`, 5, /a tag has no whitespace/);
  oneProblem(`${MINIMAL}umask = 0999\n`, 5, /not an octal umask/);
  oneProblem(`${MINIMAL}umask = 1777\n`, 5, /not an octal umask/);
  oneProblem(`${MINIMAL}rlimits = n1024 x5\n`, 5, /not a resource limit list/);
  assert.equal(account(parse(`${MINIMAL}umask = 0022\n`), 'alice').settings.umask, 0o22);
  assert.equal(account(parse(`${MINIMAL}rlimits = Sv1G Hn!\n`), 'alice').settings.rlimits, 'Sv1G Hn!');
});

test('every problem is reported, in line order, as file:line: message', () => {
  const text = `[a]\nuid = 0\ngid = 1\nhome = /\nfoo = 1\n[b]\nuid = 1\ngid = 1\nhome = rel\npassword = plain\n`;
  assert.throws(() => parse(text), (e: unknown) => {
    assert.ok(e instanceof UserDbError);
    assert.equal(e.file, 'users.ini');
    assert.deepEqual(e.message.split('\n').map((l) => l.replace(/: .*/, '')), ['users.ini:2', 'users.ini:5', 'users.ini:9', 'users.ini:10']);
    assert.match(e.message, /^users\.ini:2: \[a\] uid: "0" is not a uid/);
    return true;
  });
  // A long list is cut short.
  const many = Array.from({ length: 30 }, (_, i) => `[u${i}]\n`).join('');
  assert.throws(() => parse(many), /… and 70 more problems/);
});

test('the example in docs/translation-server.md is a valid user file', async () => {
  const { readFileSync } = await import('node:fs');
  const doc = readFileSync(new URL('../../docs/translation-server.md', import.meta.url), 'utf8');
  const example = /```ini\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(example, 'no ```ini block in the docs');
  const db = parse(example);
  assert.deepEqual([...db.accounts.keys()], ['alice', 'john.doe']);
  assert.equal(account(db, 'alice').authorizedKeys.length, 2);
  const sftp = account(db, 'john.doe').partitions[0]!;
  assert.deepEqual([sftp.name, sftp.settings.uid, sftp.settings.home, sftp.settings.mountHome], ['sftp', 2002, '/srv/www/john', '/srv/www/john']);
});
