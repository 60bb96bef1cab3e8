import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseListenFds, takeListenFds } from '../../src/systemd/listen-fds.ts';

test('not socket-activated without LISTEN_FDS', () => {
  assert.deepEqual(parseListenFds({}, 42), { kind: 'none' });
});

test('one named fd for this process', () => {
  assert.deepEqual(parseListenFds({ LISTEN_FDS: '1', LISTEN_PID: '42', LISTEN_FDNAMES: 'connection' }, 42), {
    kind: 'fds',
    fds: [{ fd: 3, name: 'connection' }],
  });
});

test('several fds, names missing for some', () => {
  const r = parseListenFds({ LISTEN_FDS: '2', LISTEN_PID: '7', LISTEN_FDNAMES: 'a' }, 7);
  assert.deepEqual(r, { kind: 'fds', fds: [{ fd: 3, name: 'a' }, { fd: 4, name: 'unknown' }] });
});

test('LISTEN_PID of another process, or none, is an error: the fds were not meant for us', () => {
  assert.equal(parseListenFds({ LISTEN_FDS: '1', LISTEN_PID: '1' }, 42).kind, 'error');
  assert.equal(parseListenFds({ LISTEN_FDS: '1' }, 42).kind, 'error');
  assert.equal(parseListenFds({ LISTEN_FDS: 'x', LISTEN_PID: '42' }, 42).kind, 'error');
});

test('taking them removes the variables, so no child inherits them', () => {
  const env: NodeJS.ProcessEnv = { LISTEN_FDS: '1', LISTEN_PID: '9', LISTEN_FDNAMES: 'connection', OTHER: 'x' };
  assert.equal(takeListenFds(env, 9).kind, 'fds');
  assert.deepEqual(env, { OTHER: 'x' });
  const bad: NodeJS.ProcessEnv = { LISTEN_FDS: '1', LISTEN_PID: '1' };
  assert.equal(takeListenFds(bad, 9).kind, 'error');
  assert.deepEqual(bad, {});
});
