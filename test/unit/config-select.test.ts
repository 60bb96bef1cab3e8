// selectListener: mapping a connection's local address back to its listener block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText, selectListener, type ListenerConfig } from '../../src/config/index.ts';

/** One listener per bind spec (`addr` or `addr|v6only`), tagged l0, l1, ... */
function listeners(...binds: string[]): ListenerConfig[] {
  const text = binds
    .map((b, i) => {
      const [addr, flag] = b.split('|');
      return `listener {\n bind "${addr}"\n tag l${i}\n${flag === 'v6only' ? ' v6only yes\n' : ''}}\n`;
    })
    .join('');
  return parseConfigText(text, { path: '/c' }).listeners;
}

function pick(ls: ListenerConfig[], local: Parameters<typeof selectListener>[1]): [string, string] {
  const r = selectListener(ls, local);
  return [r.listener.tag, r.match];
}

test('an exact address and port match wins over an earlier wildcard', () => {
  const ls = listeners('*:22', '192.0.2.1:22', '[2001:db8::1]:22');
  assert.deepEqual(pick(ls, { address: '192.0.2.1', port: 22 }), ['l1', 'exact']);
  assert.deepEqual(pick(ls, { address: '2001:DB8:0::1', port: 22, family: 'IPv6' }), ['l2', 'exact']);
  assert.deepEqual(pick(ls, { address: '::ffff:192.0.2.1', port: 22, family: 'IPv6' }), ['l1', 'exact']);
});

test('the port must match too', () => {
  const ls = listeners('192.0.2.1:22', '192.0.2.1:23');
  assert.deepEqual(pick(ls, { address: '192.0.2.1', port: 23 }), ['l1', 'exact']);
  assert.deepEqual(pick(ls, { address: '192.0.2.1', port: 24 }), ['l0', 'first']);
});

test('IPv4 reaches * and [::] wildcards only when they are dual-stack', () => {
  assert.deepEqual(pick(listeners('192.0.2.9:22', '*:22'), { address: '192.0.2.1', port: 22 }), ['l1', 'wildcard']);
  assert.deepEqual(pick(listeners('192.0.2.9:22', '[::]:22'), { address: '::ffff:192.0.2.1', port: 22 }), ['l1', 'wildcard']);
  assert.deepEqual(pick(listeners('192.0.2.9:22', '*:22|v6only'), { address: '192.0.2.1', port: 22 }), ['l0', 'first']);
  assert.deepEqual(pick(listeners('*:22|v6only', '0.0.0.0:22'), { address: '192.0.2.1', port: 22 }), ['l1', 'wildcard']);
});

test('0.0.0.0 matches IPv4 (also v4-mapped) but not IPv6', () => {
  assert.deepEqual(pick(listeners('[::1]:9', '0.0.0.0:22'), { address: '::ffff:10.0.0.1', port: 22 }), ['l1', 'wildcard']);
  assert.deepEqual(pick(listeners('[::1]:9', '0.0.0.0:22'), { address: '2001:db8::5', port: 22 }), ['l0', 'first']);
  assert.deepEqual(pick(listeners('0.0.0.0:22', '*:22|v6only'), { address: '2001:db8::5', port: 22 }), ['l1', 'wildcard']);
});

test('wildcards need the same port', () => {
  assert.deepEqual(pick(listeners('/run/x', '*:22'), { address: '192.0.2.1', port: 2222 }), ['l0', 'first']);
});

test('a single listener is used whatever the socket says (systemd ListenStream= may differ)', () => {
  assert.deepEqual(pick(listeners('*:2200'), { address: '192.0.2.1', port: 22 }), ['l0', 'only']);
  assert.deepEqual(pick(listeners('192.0.2.1:22'), { path: '/run/other' }), ['l0', 'only']);
});

test('AF_UNIX: path and abstract names match exactly', () => {
  const ls = listeners('*:22', '/run/lukko.sock', '@lukko');
  assert.deepEqual(pick(ls, { path: '/run/lukko.sock' }), ['l1', 'exact']);
  assert.deepEqual(pick(ls, { path: '\0lukko' }), ['l2', 'exact']);
  assert.deepEqual(pick(ls, { path: '@lukko' }), ['l2', 'exact']);
  assert.deepEqual(pick(ls, { path: '/run/lukko' }), ['l0', 'first']);
});

test('the implicit listener takes IPv4 and IPv6 on port 2200', () => {
  const ls = parseConfigText('', { path: '/c' }).listeners;
  assert.equal(selectListener(ls, { address: '127.0.0.1', port: 2200, family: 'IPv4' }).match, 'wildcard');
  assert.equal(selectListener(ls, { address: '::1', port: 2200 }).match, 'wildcard');
});

test('no listeners is a programming error', () => {
  assert.throws(() => selectListener([], { address: '::1', port: 22 }), /no listeners/);
});
