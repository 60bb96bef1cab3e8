import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePackets } from '../../src/translation/codec.ts';
import { loginFromResponse, unenforceablePackets } from '../../src/translation/login.ts';
import type { TranslationResponse } from '../../src/translation/response.ts';
import { parseLoginResponse } from '../../src/translation/response.ts';

function parse(hex: string): TranslationResponse {
  const framed = decodePackets(Buffer.from(hex, 'hex'), { eof: true });
  assert.equal(framed.kind, 'complete');
  const r = parseLoginResponse(framed.kind === 'complete' ? framed.packets : []);
  assert.ok(!(r instanceof Error), String(r));
  return r as TranslationResponse;
}

const TV6 = '000001000800a500e8030000e80300000b0043002f686f6d652f616c6963650900be002f62696e2f6261736800000200';
const TV7 = '01000100030c00a500e9030000640000001b0000000b0043002f686f6d652f6361726f6c0000b0000200c1001200050072006e313032340c0086004c414e473d432e5554462d380600c90061636374343200000200';
const TV8 = '01000100030900bf00736674702d6f6e6c790800a500e8030000e80300000b0043002f686f6d652f616c6963650400a800736674700800a500e8030000e80300000000c8000b0043002f686f6d652f616c6963650b006e002f686f6d652f616c6963651c00b9002f7573722f6c69622f6f70656e7373682f736674702d73657276657200000200';
const TV9 = '01000100030800a500e8030000e80300000b0043002f686f6d652f616c6963655400f8007373682d65643235353139204141414143334e7a6143316c5a4449314e5445354141414149427246367737594a367067466f4f366b58646c762f68412f6853557441586f425573447468454e6a38684b2074760a0000ff0000000200';
const TV10 = '01000100030400f400736674700800a500e8030000e80300000b0043002f686f6d652f616c69636500000200';

test('TV6: a plain account, everything allowed, home keys consulted', () => {
  const login = loginFromResponse('alice', parse(TV6));
  assert.ok(typeof login !== 'string');
  assert.deepEqual(
    { ...login.account, spawn: undefined },
    { name: 'alice', uid: 1000, gid: 1000, groups: [], home: '/home/alice', shell: '/bin/bash', source: 'translation', spawn: undefined },
  );
  assert.equal(login.homeKeys, true);
  assert.equal(login.passwordless, false);
  assert.equal(login.policy.exec, true);
  assert.equal(login.policy.portForwarding, true);
  assert.equal(login.sftpAllowed, true);
  assert.deepEqual(login.unenforceable, []);
});

test('TV7: groups, umask, rlimits, no_new_privs, SETENV and CHILD_TAG reach the account; shell defaults to /bin/sh', () => {
  const login = loginFromResponse('carol', parse(TV7));
  assert.ok(typeof login !== 'string');
  assert.deepEqual(login.account.groups, [27]);
  assert.equal(login.account.shell, '/bin/sh');
  const spawn = login.account.spawn!;
  assert.equal(spawn.umask, 0o022);
  assert.equal(spawn.noNewPrivs, true);
  assert.deepEqual(spawn.setenv, ['LANG=C.UTF-8']);
  assert.deepEqual(spawn.childTags, ['acct42']);
  assert.deepEqual(spawn.rlimits?.get('NOFILE'), { soft: 1024n, hard: 1024n });
});

test('TV8: an SFTP-only account with an sftp partition: exec, pty and forwarding denied, the partition is an account of its own', () => {
  const response = parse(TV8);
  const login = loginFromResponse('alice', response);
  assert.ok(typeof login !== 'string');
  assert.equal(login.sftpOnly, true);
  assert.equal(login.policy.exec, false);
  assert.equal(login.policy.pty, false);
  assert.equal(login.policy.portForwarding, false);
  assert.match(login.policy.origins.join(), /TOKEN sftp-only/);
  assert.equal(login.services.sftp?.spawn?.execute, '/usr/lib/openssh/sftp-server');
  // MOUNT_ROOT_TMPFS and MOUNT_HOME are enforced by lukko-exec: the partition carries them.
  assert.deepEqual(unenforceablePackets(response), []);
  assert.deepEqual(login.unenforceable, []);
  assert.deepEqual(login.services.sftp?.spawn?.isolation?.packets, ['MOUNT_ROOT_TMPFS', 'MOUNT_HOME']);
});

test('TV9: keys inline, home file off', () => {
  const login = loginFromResponse('alice', parse(TV9));
  assert.ok(typeof login !== 'string');
  assert.equal(login.homeKeys, false);
  assert.match(login.inlineKeys!.text, /^ssh-ed25519 AAAAC3Nz/);
  assert.equal(login.inlineKeys!.source, 'translation server');
});

test('TV10: NO_PASSWORD sftp is password-less and SFTP-only', () => {
  const login = loginFromResponse('alice', parse(TV10));
  assert.ok(typeof login !== 'string');
  assert.equal(login.passwordless, true);
  assert.equal(login.sftpOnly, true);
  assert.equal(login.policy.exec, false);
});

test('a response with only an sftp partition logs in as that partition, SFTP only, no home keys', () => {
  // BEGIN, SERVICE sftp, UID_GID 1000 1000, HOME /home/alice, END
  const hex = '000001000400a800736674700800a500e8030000e80300000b0043002f686f6d652f616c69636500000200';
  const login = loginFromResponse('alice', parse(hex));
  assert.ok(typeof login !== 'string');
  assert.equal(login.account.uid, 1000);
  assert.equal(login.policy.exec, false);
  assert.equal(login.sftpAllowed, true);
  assert.equal(login.homeKeys, false);
});

test('an empty success response names no account: refused', () => {
  assert.equal(typeof loginFromResponse('alice', parse('0000010000000200')), 'string');
});
