import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePackets } from '../../src/translation/codec.ts';
import { describeCommand } from '../../src/translation/commands.ts';
import { LoginRequestError, buildLoginRequest, isValidUserName } from '../../src/translation/login-request.ts';
import type { LoginRequest, LoginRequestFault } from '../../src/translation/login-request.ts';

/** The request as `NAME` or `NAME=payload` strings, in order. */
function packets(request: LoginRequest): string[] {
  const d = decodePackets(buildLoginRequest(request), { eof: true });
  assert.equal(d.kind, 'complete');
  if (d.kind !== 'complete') return [];
  return d.packets.map((p) => (p.payload.length === 0 ? describeCommand(p.command) : `${describeCommand(p.command)}=${p.payload.toString('latin1')}`));
}

function fault(request: LoginRequest): LoginRequestFault | undefined {
  try {
    buildLoginRequest(request);
    return undefined;
  } catch (e) {
    assert.ok(e instanceof LoginRequestError);
    return e.fault;
  }
}

test('account lookup: BEGIN, LOGIN, SERVICE, USER, END', () => {
  assert.deepEqual(packets({ service: 'ssh', user: 'alice' }), ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'USER=alice', 'END']);
});

test('LISTENER_TAG goes between SERVICE and USER, and only for a non-empty tag', () => {
  assert.deepEqual(packets({ service: 'ssh', user: 'a', listenerTag: 'pub' }), ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'LISTENER_TAG=pub', 'USER=a', 'END']);
  assert.deepEqual(packets({ service: 'ssh', user: 'a', listenerTag: '' }), ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'USER=a', 'END']);
});

test('PASSWORD follows USER; PEEK follows PASSWORD; all of them together', () => {
  assert.deepEqual(packets({ service: 'ssh', user: 'a', password: 'pw' }), ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'USER=a', 'PASSWORD=pw', 'END']);
  assert.deepEqual(packets({ service: 'ssh', user: 'a', peek: true }), ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'USER=a', 'PEEK', 'END']);
  assert.deepEqual(packets({ service: 'ssh', user: 'a', peek: false }), ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'USER=a', 'END']);
  assert.deepEqual(
    packets({ service: 'ssh', user: 'a', listenerTag: 't', password: 'pw', peek: true }),
    ['BEGIN', 'LOGIN', 'SERVICE=ssh', 'LISTENER_TAG=t', 'USER=a', 'PASSWORD=pw', 'PEEK', 'END'],
  );
});

test('the password is sent as its raw UTF-8 bytes; bytes are accepted too', () => {
  const withString = buildLoginRequest({ service: 'ssh', user: 'a', password: 'pä' });
  assert.ok(withString.includes(Buffer.from('0300a60070c3a4', 'hex')));
  const withBytes = buildLoginRequest({ service: 'ssh', user: 'a', password: Buffer.from([0xff, 0x01]) });
  assert.ok(withBytes.includes(Buffer.from('0200a600ff01', 'hex')));
});

test('user names: 1 to 255 characters of [A-Za-z0-9._@-]', () => {
  for (const good of ['a', 'Alice.B_c-d@example.com', '0', 'x'.repeat(255)]) {
    assert.equal(isValidUserName(good), true, good);
    assert.equal(fault({ service: 'ssh', user: good }), undefined, good);
  }
  for (const bad of ['', 'x'.repeat(256), 'a b', 'a/b', 'a\0b', 'ä', 'a:b', 'a+b', 'a\n', '~root']) {
    assert.equal(isValidUserName(bad), false, JSON.stringify(bad));
    assert.equal(fault({ service: 'ssh', user: bad }), 'invalid-user', JSON.stringify(bad));
  }
});

test('the user name is checked before the password and everything else', () => {
  assert.equal(fault({ service: '', user: 'a b', password: 'x'.repeat(300), listenerTag: 'x'.repeat(300) }), 'invalid-user');
});

test('passwords: up to 256 bytes, not empty, no NUL', () => {
  assert.equal(fault({ service: 'ssh', user: 'a', password: 'x'.repeat(256) }), undefined);
  assert.equal(fault({ service: 'ssh', user: 'a', password: 'x'.repeat(257) }), 'password-too-long');
  assert.equal(fault({ service: 'ssh', user: 'a', password: 'ä'.repeat(129) }), 'password-too-long'); // 258 bytes
  assert.equal(fault({ service: 'ssh', user: 'a', password: '' }), 'empty-password');
  assert.equal(fault({ service: 'ssh', user: 'a', password: 'a\0b' }), 'password-nul');
});

test('listener tag: up to 256 bytes, no NUL; service: non-empty, no NUL', () => {
  assert.equal(fault({ service: 'ssh', user: 'a', listenerTag: 't'.repeat(256) }), undefined);
  assert.equal(fault({ service: 'ssh', user: 'a', listenerTag: 't'.repeat(257) }), 'invalid-listener-tag');
  assert.equal(fault({ service: 'ssh', user: 'a', listenerTag: 'a\0' }), 'invalid-listener-tag');
  assert.equal(fault({ service: '', user: 'a' }), 'invalid-service');
  assert.equal(fault({ service: 's\0', user: 'a' }), 'invalid-service');
});

test('the largest request stays within the original 1024-byte buffer', () => {
  const request = buildLoginRequest({ service: 'ssh', user: 'u'.repeat(255), listenerTag: 't'.repeat(256), password: 'p'.repeat(256), peek: true });
  assert.equal(request.length, 4 + 4 + 7 + 260 + 259 + 260 + 4 + 4);
  assert.ok(request.length <= 1024);
});
