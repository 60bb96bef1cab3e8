import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Account } from '../../src/auth/account.ts';
import { helperArgs, parseStatus } from '../../src/forward/netns.ts';

const account: Account = { name: 'a', uid: 1001, gid: 1002, groups: [5, 6], home: '/home/a', shell: '/bin/sh', source: 'translation' };

test('helperArgs: the namespace, the identity and exactly the account\'s groups', () => {
  assert.deepEqual(helperArgs(account, 'blue'), ['--netns', 'blue', '--uid', '1001', '--gid', '1002', '--groups', '5,6']);
  assert.deepEqual(helperArgs({ ...account, groups: [] }, 'blue').slice(-2), ['--groups', '']);
  assert.deepEqual(helperArgs({ ...account, groups: 'nss' }, 'blue').slice(-2), ['--init-groups', 'a']);
});

test('parseStatus: ok, ok PORT, and each failure stage names the namespace', () => {
  assert.deepEqual(parseStatus('ok', 'n'), { ok: true });
  assert.deepEqual(parseStatus('ok 4242', 'n'), { ok: true, port: 4242 });
  assert.deepEqual(parseStatus('fail netns ENOENT', 'n'), { ok: false, why: 'network namespace n: cannot enter (ENOENT)' });
  assert.deepEqual(parseStatus('fail connect ECONNREFUSED', 'n'), { ok: false, why: 'connect failed: ECONNREFUSED (network namespace n)' });
  assert.deepEqual(parseStatus('fail listen EADDRINUSE', 'n'), { ok: false, why: 'listen failed: EADDRINUSE (network namespace n)' });
  assert.deepEqual(parseStatus('fail privileges EPERM', 'n'), { ok: false, why: 'network namespace n: privileges EPERM' });
  for (const bad of [undefined, '', 'ok x', 'ok 123456', 'fail', 'yes']) assert.equal(parseStatus(bad, 'n').ok, false, String(bad));
});
