import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SpawnDescription } from '../../src/spawn/description.ts';
import { execArgs } from '../../src/spawn/spawn.ts';
import { termiosArgs } from '../../src/spawn/termios.ts';

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
