import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SpawnDescription } from '../../src/spawn/description.ts';
import { execArgs, SpawnRefused } from '../../src/spawn/spawn.ts';
import { termiosArgs } from '../../src/spawn/termios.ts';
import { RLIM_INFINITY, type Rlimits } from '../../src/translation/rlimits.ts';

const desc: SpawnDescription = {
  file: '/bin/bash', argv0: '-bash', args: [], env: [], cwd: '/home/a', uid: 1000, gid: 100, groups: [100, 27], user: 'a',
};

test('as root: identity, then chdir and argv[0], then the program', () => {
  assert.deepEqual(execArgs(desc, { asRoot: true }), ['--uid', '1000', '--gid', '100', '--groups', '100,27', '--chdir', '/home/a', '--argv0', '-bash', '--', '/bin/bash']);
  assert.deepEqual(execArgs({ ...desc, groups: 'nss' }, { asRoot: true }).slice(4, 6), ['--init-groups', 'a']);
  assert.deepEqual(execArgs({ ...desc, groups: [] }, { asRoot: true }).slice(4, 6), ['--groups', '']);
});

test('not root: no identity change is asked for', () => {
  assert.equal(execArgs(desc, { asRoot: false }).includes('--uid'), false);
});

test('a pty: the tty group and the terminal modes', () => {
  const a = execArgs({ ...desc, pty: { term: 'xterm', cols: 80, rows: 24, width: 0, height: 0, modes: { ECHO: 0 } } }, { asRoot: true, ttyGid: 5 });
  assert.deepEqual(a.slice(a.indexOf('--tty'), a.indexOf('--tty') + 2), ['--tty', '5']);
  assert.ok(a.includes('--termios'));
});

test('terminal modes: flags set and cleared per termios field, control characters by index', () => {
  const a = termiosArgs({ VINTR: 3, VERASE: 8, VEOL: 255, ECHO: 0, ICANON: 1, ICRNL: 1, ONLCR: 1, CS8: 1, TTY_OP_ISPEED: 38400, IUTF8: 1 });
  const spec = a[a.indexOf('--termios') + 1]!.split(',').map(Number);
  // iflag set: ICRNL | IUTF8
  assert.equal(spec[0], 0o400 | 0o40000);
  assert.equal(spec[2], 0o4); // oflag set ONLCR
  assert.equal(spec[4], 0o60); // cflag CS8
  assert.equal(spec[6], 0o2); // lflag set ICANON
  assert.equal(spec[7], 0o10); // lflag clear ECHO
  const cc = a.filter((_, i) => a[i - 1] === '--cc');
  assert.deepEqual(cc, ['0=3', '2=8', '11=0']); // 255 = disabled = 0 on Linux
});

// the helper options between the program's own and the `--`
function limitsPart(a: string[]): string[] {
  return a.slice(a.indexOf('-bash') + 1, a.indexOf('--'));
}

test('umask: 4-digit octal, as root or not', () => {
  assert.deepEqual(execArgs({ ...desc, umask: 0o27 }, { asRoot: true }), ['--uid', '1000', '--gid', '100', '--groups', '100,27', '--chdir', '/home/a', '--argv0', '-bash', '--umask', '0027', '--', '/bin/bash']);
  assert.deepEqual(execArgs({ ...desc, umask: 0 }, { asRoot: false }), ['--chdir', '/home/a', '--argv0', '-bash', '--umask', '0000', '--', '/bin/bash']);
  assert.deepEqual(limitsPart(execArgs({ ...desc, umask: 0o777 }, { asRoot: true })), ['--umask', '0777']);
  for (const bad of [-1, 0o1000, 1.5, NaN]) assert.throws(() => execArgs({ ...desc, umask: bad }, { asRoot: true }), SpawnRefused);
});

test('rlimits: one --rlimit per resource, sorted by name; "-" keeps a side, "inf" is RLIM_INFINITY', () => {
  const rlimits: Rlimits = new Map([
    ['NOFILE', { soft: 100n, hard: 200n }],
    ['CORE', { soft: 0n }],
    ['AS', { hard: RLIM_INFINITY }],
    ['NPROC', {}], // nothing set: nothing to say
    ['FSIZE', { soft: RLIM_INFINITY - 1n, hard: RLIM_INFINITY }],
  ]);
  assert.deepEqual(execArgs({ ...desc, rlimits }, { asRoot: true }), [
    '--uid', '1000', '--gid', '100', '--groups', '100,27', '--chdir', '/home/a', '--argv0', '-bash',
    '--rlimit', 'AS=-:inf', '--rlimit', 'CORE=0:-', '--rlimit', 'FSIZE=18446744073709551614:inf', '--rlimit', 'NOFILE=100:200',
    '--', '/bin/bash',
  ]);
  assert.deepEqual(limitsPart(execArgs({ ...desc, rlimits }, { asRoot: false })), ['--rlimit', 'AS=-:inf', '--rlimit', 'CORE=0:-', '--rlimit', 'FSIZE=18446744073709551614:inf', '--rlimit', 'NOFILE=100:200']);
  // soft above hard is passed on as asked: lukko-exec refuses it after merging with the inherited values
  assert.deepEqual(limitsPart(execArgs({ ...desc, rlimits: new Map([['NOFILE', { soft: 300n, hard: 200n }]]) }, { asRoot: true })), ['--rlimit', 'NOFILE=300:200']);
  assert.deepEqual(limitsPart(execArgs({ ...desc, rlimits: new Map() }, { asRoot: true })), []);
  for (const bad of [-1n, RLIM_INFINITY + 1n]) {
    assert.throws(() => execArgs({ ...desc, rlimits: new Map([['CPU', { soft: bad }]]) }, { asRoot: true }), SpawnRefused);
    assert.throws(() => execArgs({ ...desc, rlimits: new Map([['CPU', { hard: bad }]]) }, { asRoot: true }), SpawnRefused);
  }
});

test('noNewPrivs: a flag, only when true', () => {
  assert.deepEqual(execArgs({ ...desc, noNewPrivs: true }, { asRoot: true }), ['--uid', '1000', '--gid', '100', '--groups', '100,27', '--chdir', '/home/a', '--argv0', '-bash', '--no-new-privs', '--', '/bin/bash']);
  assert.deepEqual(limitsPart(execArgs({ ...desc, noNewPrivs: true }, { asRoot: false })), ['--no-new-privs']);
  assert.deepEqual(limitsPart(execArgs({ ...desc, noNewPrivs: false }, { asRoot: true })), []);
});

test('all three together, after the terminal options and before the program', () => {
  const a = execArgs(
    { ...desc, args: ['-c', 'x'], umask: 0o22, rlimits: new Map([['NOFILE', { soft: 1n, hard: 2n }]]), noNewPrivs: true, pty: { term: 'xterm', cols: 80, rows: 24, width: 0, height: 0, modes: {} } },
    { asRoot: true, ttyGid: 5 },
  );
  const tail = a.slice(a.indexOf('--umask'));
  assert.deepEqual(tail, ['--umask', '0022', '--rlimit', 'NOFILE=1:2', '--no-new-privs', '--', '/bin/bash', '-c', 'x']);
  assert.ok(a.indexOf('--termios') < a.indexOf('--umask'));
});

test('absent fields emit nothing', () => {
  const plain = execArgs(desc, { asRoot: true });
  assert.deepEqual(execArgs({ ...desc, umask: undefined, rlimits: undefined, noNewPrivs: undefined }, { asRoot: true }), plain);
  for (const opt of ['--umask', '--rlimit', '--no-new-privs']) assert.equal(plain.includes(opt), false);
});

test('a passwd line for accounts NSS does not know, only as root (it needs a mount namespace)', () => {
  const d = { ...desc, passwdEntry: 'carol:x:2001:2001::/home/carol:/bin/sh' };
  const root = execArgs(d, { asRoot: true });
  assert.equal(root[root.indexOf('--passwd-line') + 1], 'carol:x:2001:2001::/home/carol:/bin/sh');
  assert.equal(execArgs(d, { asRoot: false }).includes('--passwd-line'), false);
});
