import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lookupNssAccount, parsePasswdLine, validUserName } from '../../src/auth/account.ts';

test('user names: 1-255 of [A-Za-z0-9._@-]', () => {
  for (const ok of ['alice', 'first.last', 'a@b', 'x-y_z', 'A'.repeat(255)]) assert.equal(validUserName(ok), true, ok);
  for (const bad of ['', 'bad+name', 'a b', 'a/b', 'A'.repeat(256), 'é']) assert.equal(validUserName(bad), false, bad);
});

test('passwd lines', () => {
  assert.deepEqual(parsePasswdLine('alice:x:1001:100:Alice:/home/alice:/bin/bash\n'), { name: 'alice', uid: 1001, gid: 100, home: '/home/alice', shell: '/bin/bash' });
  assert.equal(parsePasswdLine('broken:x:1'), undefined);
  assert.equal(parsePasswdLine('x:x:a:1:::'), undefined);
});

test('NSS lookup: a real account, an unknown one, and no uid-for-name confusion', async () => {
  const root = await lookupNssAccount('root');
  assert.equal(root?.uid, 0);
  assert.equal(root?.groups, 'nss');
  assert.equal(await lookupNssAccount('no-such-user-lukko'), undefined);
  // getent accepts numbers as uids: "0" must not become root
  assert.equal(await lookupNssAccount('0'), undefined);
});
