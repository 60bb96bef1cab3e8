// Address syntax (§1.7) and formatting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, formatAddress, parseAddress, parseConfigText, type Address } from '../../src/config/index.ts';

const bind = (text: string): Address => parseAddress(text, { defaultPort: 2200, allowWildcard: true });

test('wildcards', () => {
  assert.deepEqual(bind('*'), { kind: 'inet', host: '', port: 2200, wildcard: true });
  assert.deepEqual(bind('*:22'), { kind: 'inet', host: '', port: 22, wildcard: true });
  assert.deepEqual(bind('0.0.0.0:22'), { kind: 'inet', host: '0.0.0.0', port: 22, wildcard: true });
  assert.deepEqual(bind('[::]:22'), { kind: 'inet', host: '::', port: 22, wildcard: true });
  assert.deepEqual(bind('::'), { kind: 'inet', host: '::', port: 2200, wildcard: true });
  assert.deepEqual(bind('[0:0::0]'), { kind: 'inet', host: '::', port: 2200, wildcard: true });
});

test('IPv4 with and without port', () => {
  assert.deepEqual(bind('192.0.2.1'), { kind: 'inet', host: '192.0.2.1', port: 2200, wildcard: false });
  assert.deepEqual(bind('127.0.0.1:22'), { kind: 'inet', host: '127.0.0.1', port: 22, wildcard: false });
  assert.deepEqual(bind('255.255.255.255:65535'), { kind: 'inet', host: '255.255.255.255', port: 65535, wildcard: false });
});

test('IPv6: bracketed with port, bare without, canonicalised, with scope', () => {
  assert.deepEqual(bind('[::1]:22'), { kind: 'inet', host: '::1', port: 22, wildcard: false });
  assert.deepEqual(bind('[::1]'), { kind: 'inet', host: '::1', port: 2200, wildcard: false });
  assert.deepEqual(bind('2001:DB8:0:0:0:0:0:1'), { kind: 'inet', host: '2001:db8::1', port: 2200, wildcard: false });
  assert.deepEqual(bind('[fe80::1%eth0]:22'), { kind: 'inet', host: 'fe80::1', port: 22, scope: 'eth0', wildcard: false });
  assert.deepEqual(bind('fe80::1%2'), { kind: 'inet', host: 'fe80::1', port: 2200, scope: '2', wildcard: false });
  assert.deepEqual(bind('::ffff:192.0.2.1'), { kind: 'inet', host: '::ffff:192.0.2.1', port: 2200, wildcard: false });
});

test('IPv6 canonical form follows RFC 5952 like Node reports it', () => {
  const host = (t: string): string => {
    const a = bind(t);
    return a.kind === 'inet' ? a.host : '';
  };
  assert.equal(host('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(host('1:0:0:1:0:0:0:1'), '1:0:0:1::1');
  assert.equal(host('1:0:0:1:1:0:0:1'), '1::1:1:0:0:1');
  assert.equal(host('1:0:1:0:1:0:1:0'), '1:0:1:0:1:0:1:0');
  assert.equal(host('1::'), '1::');
  assert.equal(host('::ffff:c000:0201'), '::ffff:192.0.2.1');
  assert.equal(host('::c000:0201'), '::192.0.2.1');
  assert.equal(host('::0.0.0.1'), '::1');
  assert.equal(host('1:2:3:4:5:6:1.2.3.4'), '1:2:3:4:5:6:102:304');
});

test('AF_UNIX paths and abstract names', () => {
  assert.deepEqual(bind('/run/lukko.sock'), { kind: 'unix', path: '/run/lukko.sock', abstract: false });
  assert.deepEqual(bind('@lukko'), { kind: 'unix', path: 'lukko', abstract: true });
  assert.deepEqual(bind('/' + 'x'.repeat(106)), { kind: 'unix', path: '/' + 'x'.repeat(106), abstract: false });
  assert.throws(() => bind('/' + 'x'.repeat(107)), { message: /^Socket path is too long/ });
  assert.throws(() => bind('@' + 'x'.repeat(108)), { message: /^Socket path is too long/ });
});

function rejects(text: string, message: string, opts = { defaultPort: 2200, allowWildcard: true }): void {
  assert.throws(() => parseAddress(text, opts), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.reason, message);
    assert.equal(e.token, text);
    return true;
  });
}

test('only numeric hosts: names are not resolved', () => {
  rejects('localhost', 'Failed to resolve "localhost":"2200": Name or service not known');
  rejects('example.com:22', 'Failed to resolve "example.com":"22": Name or service not known');
  rejects('1.2.3', 'Failed to resolve "1.2.3":"2200": Name or service not known');
  rejects('01.2.3.4', 'Failed to resolve "01.2.3.4":"2200": Name or service not known');
  rejects('256.0.0.1', 'Failed to resolve "256.0.0.1":"2200": Name or service not known');
  rejects('[1.2.3.4]:22', 'Failed to resolve "1.2.3.4":"22": Name or service not known');
  rejects('1.2.3.4%eth0', 'Failed to resolve "1.2.3.4%eth0":"2200": Name or service not known');
  rejects('fe80::1%', 'Failed to resolve "fe80::1%":"2200": Name or service not known');
  rejects('1:2:3:4:5:6:7:8:9', 'Failed to resolve "1:2:3:4:5:6:7:8:9":"2200": Name or service not known');
  rejects('1::2::3', 'Failed to resolve "1::2::3":"2200": Name or service not known');
  rejects('1:2:3:4:5:6:7::8', 'Failed to resolve "1:2:3:4:5:6:7::8":"2200": Name or service not known');
  rejects('12345::1', 'Failed to resolve "12345::1":"2200": Name or service not known');
  rejects('[::1]x', 'Failed to resolve "[::1]x":"2200": Name or service not known');
  rejects('[::1', 'Failed to resolve "[::1":"2200": Name or service not known');
});

test('ports are decimal 1-65535; service names are not looked up', () => {
  rejects('1.2.3.4:ssh', 'Failed to resolve "1.2.3.4":"ssh": Servname not supported for ai_socktype');
  rejects('1.2.3.4:0', 'Failed to resolve "1.2.3.4":"0": Servname not supported for ai_socktype');
  rejects('[::1]:65536', 'Failed to resolve "::1":"65536": Servname not supported for ai_socktype');
  rejects('*:', 'Failed to resolve "*":"": Servname not supported for ai_socktype');
  rejects('*:-1', 'Failed to resolve "*":"-1": Servname not supported for ai_socktype');
});

test('* is only accepted where a wildcard makes sense', () => {
  rejects('*', 'Failed to resolve "*":"5479": Name or service not known', { defaultPort: 5479, allowWildcard: false });
  assert.throws(() => parseConfigText('listener {\n bind "*"\n pond_server "*"\n}', { path: '/c' }), {
    message: `/c:3: Failed to resolve "*":"5479": Name or service not known (near '*')`,
  });
});

test('formatAddress', () => {
  assert.equal(formatAddress(bind('*')), '[::]:2200');
  assert.equal(formatAddress(bind('[::]:22')), '[::]:22');
  assert.equal(formatAddress(bind('0.0.0.0:22')), '0.0.0.0:22');
  assert.equal(formatAddress(bind('127.0.0.1:22')), '127.0.0.1:22');
  assert.equal(formatAddress(bind('::1')), '[::1]:2200');
  assert.equal(formatAddress(bind('[FE80::1%eth0]:22')), '[fe80::1%eth0]:22');
  assert.equal(formatAddress(bind('::ffff:1.2.3.4')), '[::ffff:1.2.3.4]:2200');
  assert.equal(formatAddress(bind('/run/x')), '/run/x');
  assert.equal(formatAddress(bind('@name')), '@name');
});
