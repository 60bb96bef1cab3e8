// `spawn { ... }`: identities and systemd resource limits, including byte sizes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseByteSize, parseConfigText, type Config, type SpawnConfig } from '../../src/config/index.ts';

const P = '/etc/lukko/lukko.conf';
const parse = (text: string): Config => parseConfigText(text, { path: P });
const spawn = (body: string): SpawnConfig => parse(`spawn {\n${body}\n}\n`).spawn;

/** Body lines start on line 2. */
function fails(body: string, reason: string, token: string, line = 2): void {
  assert.throws(() => parse(`spawn {\n${body}\n}\n`), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.message, `${P}:${line}: ${reason} (near '${token}')`);
    return true;
  });
}

test('allow_user: names, numbers and N- ranges, repeatable', () => {
  const s = spawn(' allow_user alice\n allow_user 1001\n allow_user "2000-"\n allow_user 0');
  assert.deepEqual(s.allowUsers, [{ name: 'alice' }, { id: 1001 }, { id: 0 }]);
  assert.equal(s.allowUsersFrom, 2000);
  assert.equal(spawn(' allow_user 1000-').allowUsersFrom, 1000);
  fails(' allow_user 4294967295', 'Invalid user id', '4294967295');
  fails(' allow_user "4294967295-"', 'Invalid user id', '"4294967295-"');
  fails(' allow_user', 'Value expected', 'allow_user');
  fails(' allow_user a/b', 'Value expected', 'a/b');
});

test('allow_group and cgroups_writable_by_group', () => {
  const s = spawn(' allow_group staff\n allow_group 100\n cgroups_writable_by_group 4242');
  assert.deepEqual(s.allowGroups, [{ name: 'staff' }, { id: 100 }]);
  assert.deepEqual(s.cgroupsWritableByGroup, { id: 4242 });
  assert.deepEqual(spawn(' cgroups_writable_by_group web').cgroupsWritableByGroup, { name: 'web' });
  fails(' allow_group 4294967296', 'Invalid group id', '4294967296');
  fails(' cgroups_writable_by_group', 'Value expected', 'cgroups_writable_by_group');
});

test('default_user: once, across repeated spawn blocks', () => {
  assert.deepEqual(spawn(' default_user nobody').defaultUser, { name: 'nobody' });
  assert.deepEqual(spawn(' default_user 65534').defaultUser, { id: 65534 });
  fails(' default_user a\n default_user b', "Duplicate 'default_user'", 'b', 3);
  assert.throws(() => parse('spawn {\n default_user a\n}\nspawn {\n default_user b\n}'), {
    message: `${P}:5: Duplicate 'default_user' (near 'b')`,
  });
});

test('repeated spawn blocks update the same settings', () => {
  const s = parse('spawn {\n allow_user a\n CPUWeight 10\n}\nspawn {\n allow_user b\n CPUWeight 20\n systemd_scope_optional yes\n}').spawn;
  assert.deepEqual(s.allowUsers, [{ name: 'a' }, { name: 'b' }]);
  assert.equal(s.resources.cpuWeight, 20);
  assert.equal(s.systemdScopeOptional, true);
});

test('systemd_scope_optional is a boolean', () => {
  assert.equal(spawn(' systemd_scope_optional no').systemdScopeOptional, false);
  fails(' systemd_scope_optional 1', 'yes/no expected', '1');
});

test('resource keys are case-insensitive, identity keys are not', () => {
  const r = spawn(' cpuweight 1\n IOWEIGHT 10000\n tasksMax 2147483648').resources;
  assert.deepEqual(r, { cpuWeight: 1, ioWeight: 10000, tasksMax: 2147483648 });
  fails(' Allow_User alice', 'Unknown option', 'Allow_User');
  fails(' MemoryMaximum 1G', 'Unknown option', 'MemoryMaximum');
});

test('weight and task ranges', () => {
  fails(' CPUWeight 0', 'Value too small (minimum 1)', '0');
  fails(' CPUWeight 10001', 'Value too large (maximum 10000)', '10001');
  fails(' IOWeight 0', 'Value too small (minimum 1)', '0');
  fails(' IOWeight 20000', 'Value too large (maximum 10000)', '20000');
  fails(' TasksMax 0', 'Value too small (minimum 1)', '0');
  fails(' TasksMax 2147483649', 'Value too large (maximum 2147483648)', '2147483649');
  fails(' CPUWeight -1', 'Positive integer expected', '-1');
  fails(' CPUWeight lots', 'Positive integer expected', 'lots');
});

test('memory limits: byte sizes (powers of 1024), N% and infinity', () => {
  const r = spawn(' MemoryMin "16 GB"\n MemoryLow 512M\n MemoryHigh "50%"\n MemoryMax infinity\n MemorySwapMax 1KiB').resources;
  assert.deepEqual(r, {
    memoryMin: { bytes: 16 * 2 ** 30 },
    memoryLow: { bytes: 512 * 2 ** 20 },
    memoryHigh: { percent: 50 },
    memoryMax: 'infinity',
    memorySwapMax: { bytes: 1024 },
  });
  assert.deepEqual(spawn(' memorymax "12.5%"').resources.memoryMax, { percent: 12.5 });
  assert.deepEqual(spawn(' MemorySwapMax infinity').resources.memorySwapMax, 'infinity');
  fails(' MemoryMax "101%"', 'Percentage out of range', '"101%"');
  fails(' MemoryMax 1.5G', 'Invalid byte size', '1.5G');
  fails(' MemoryMax 1X', 'Invalid byte size', '1X');
  fails(' MemoryMax "-1"', 'Invalid byte size', '"-1"');
  fails(' MemoryMax Infinity', 'Invalid byte size', 'Infinity');
  fails(' MemorySwapMax "50%"', 'Invalid byte size', '"50%"');
  fails(' MemoryLow 99999999T', 'Value is too large', '99999999T');
  fails(' MemoryHigh', 'Value expected', 'MemoryHigh');
});

test('parseByteSize units', () => {
  assert.equal(parseByteSize('100'), 100);
  assert.equal(parseByteSize('0'), 0);
  assert.equal(parseByteSize('1B'), 1);
  assert.equal(parseByteSize('2k'), 2048);
  assert.equal(parseByteSize('2K'), 2048);
  assert.equal(parseByteSize('2KB'), 2048);
  assert.equal(parseByteSize('2Ki'), 2048);
  assert.equal(parseByteSize('3 MiB'), 3 * 2 ** 20);
  assert.equal(parseByteSize('1\tG'), 2 ** 30);
  assert.equal(parseByteSize('2T'), 2 * 2 ** 40);
  assert.equal(parseByteSize('1 m'), undefined);
  assert.equal(parseByteSize('1KiBB'), undefined);
  assert.equal(parseByteSize('K'), undefined);
  assert.equal(parseByteSize(''), undefined);
  assert.equal(parseByteSize('9999999999T'), Infinity);
});

test('spawn refuses unknown attributes', () => {
  fails(' bind "*"', 'Unknown option', 'bind');
});
