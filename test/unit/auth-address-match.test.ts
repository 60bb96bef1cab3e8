import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  cidrContains,
  isLoopbackIp,
  matchFromPatterns,
  matchPattern,
  normalizeIp,
  validateFromPatterns,
} from '../../src/auth/address-match.ts';

test('matchPattern: literals, * and ?', () => {
  const yes: Array<[string, string]> = [
    ['abc', 'abc'],
    ['*', ''],
    ['*', 'anything'],
    ['a*', 'a'],
    ['a*c', 'abbbc'],
    ['?', 'x'],
    ['1?.0.0.*', '10.0.0.255'],
    ['*.example.com', 'a.b.example.com'],
    ['*a*b', 'xaxxab'],
    ['**', 'x'],
    ['a*b*c', 'abcbc'],
  ];
  const no: Array<[string, string]> = [
    ['abc', 'abd'],
    ['abc', 'ab'],
    ['ab', 'abc'],
    ['?', ''],
    ['??', 'x'],
    ['a*c', 'abcd'],
    ['*.example.com', 'example.com'],
    ['ABC', 'abc'], // the generic matcher is case-sensitive; callers decide about case
  ];
  for (const [p, t] of yes) assert.equal(matchPattern(p, t), true, `${p} ~ ${t}`);
  for (const [p, t] of no) assert.equal(matchPattern(p, t), false, `${p} !~ ${t}`);
});

test('matchPattern stays fast on adversarial patterns', () => {
  const started = performance.now();
  assert.equal(matchPattern('*a*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), false);
  assert.ok(performance.now() - started < 1000);
});

test('from=: exact addresses and wildcards over the numeric address', () => {
  assert.equal(matchFromPatterns('192.0.2.7', '192.0.2.7'), true);
  assert.equal(matchFromPatterns('192.0.2.7', '192.0.2.70'), false);
  assert.equal(matchFromPatterns('192.0.2.*', '192.0.2.70'), true);
  assert.equal(matchFromPatterns('192.0.2.?', '192.0.2.70'), false);
  assert.equal(matchFromPatterns('192.0.2.?', '192.0.2.7'), true);
  assert.equal(matchFromPatterns('10.*,192.0.2.*', '192.0.2.1'), true);
  assert.equal(matchFromPatterns('10.*,172.16.*', '192.0.2.1'), false);
  assert.equal(matchFromPatterns('*', '2001:db8::1'), true);
  // No DNS: a hostname pattern never matches a client known only by address.
  assert.equal(matchFromPatterns('*.example.com', '192.0.2.1'), false);
  assert.equal(matchFromPatterns('localhost', '127.0.0.1'), false);
});

test('from=: a matching negation rejects whatever else matches, in any order', () => {
  assert.equal(matchFromPatterns('!192.0.2.5,192.0.2.*', '192.0.2.5'), false);
  assert.equal(matchFromPatterns('192.0.2.*,!192.0.2.5', '192.0.2.5'), false);
  assert.equal(matchFromPatterns('192.0.2.*,!192.0.2.5', '192.0.2.6'), true);
  assert.equal(matchFromPatterns('*,!10.0.0.0/8', '10.9.9.9'), false);
  assert.equal(matchFromPatterns('*,!10.0.0.0/8', '11.0.0.1'), true);
  // Negations alone never admit anyone.
  assert.equal(matchFromPatterns('!10.0.0.1', '192.0.2.1'), false);
});

test('from=: CIDR for IPv4 and IPv6', () => {
  assert.equal(matchFromPatterns('10.0.0.0/8', '10.255.1.2'), true);
  assert.equal(matchFromPatterns('10.0.0.0/8', '11.0.0.0'), false);
  assert.equal(matchFromPatterns('192.0.2.128/25', '192.0.2.127'), false);
  assert.equal(matchFromPatterns('192.0.2.128/25', '192.0.2.200'), true);
  assert.equal(matchFromPatterns('0.0.0.0/0', '203.0.113.9'), true);
  assert.equal(matchFromPatterns('0.0.0.0/0', '2001:db8::1'), false);
  assert.equal(matchFromPatterns('2001:db8::/32', '2001:db8:ffff::1'), true);
  assert.equal(matchFromPatterns('2001:db8::/32', '2001:db9::1'), false);
  assert.equal(matchFromPatterns('2001:DB8:0:0::/64', '2001:db8::abcd'), true);
  assert.equal(matchFromPatterns('2001:db8::1', '2001:0db8:0000::0001'), true);
  assert.equal(matchFromPatterns('::/0', '2001:db8::1'), true);
  assert.equal(matchFromPatterns('::/0', '192.0.2.1'), false);
});

test('from=: IPv6 wildcards see the canonical lowercase text', () => {
  assert.equal(matchFromPatterns('2001:db8::*', '2001:0DB8:0:0:0:0:0:5'), true);
  assert.equal(matchFromPatterns('2001:DB8::*', '2001:db8::5'), true);
  assert.equal(matchFromPatterns('fe80::*', 'fe80::1%eth0'), true);
});

test('from=: IPv4-mapped client addresses are treated as IPv4', () => {
  assert.equal(matchFromPatterns('10.0.0.0/8', '::ffff:10.1.2.3'), true);
  assert.equal(matchFromPatterns('10.1.2.*', '::ffff:10.1.2.3'), true);
  assert.equal(matchFromPatterns('10.0.0.0/8,!10.1.2.3', '::ffff:10.1.2.3'), false);
  assert.equal(matchFromPatterns('10.0.0.0/8', '::ffff:a01:203'), true);
  // A mapped network in the pattern covers the plain IPv4 client, too.
  assert.equal(matchFromPatterns('::ffff:10.0.0.0/104', '10.1.2.3'), true);
  assert.equal(matchFromPatterns('*,!::ffff:10.1.2.3', '10.1.2.3'), false);
  assert.equal(matchFromPatterns('::ffff:10.0.0.0/90', '10.1.2.3'), 'invalid');
});

test('from=: invalid networks and empty entries make the result invalid', () => {
  for (const p of ['10.0.0.1/8', '10.0.0.0/33', '10.0.0.0/x', '10.0.0.0/', '2001:db8::1/32', '::/129', '10.0.0.*/8', '', 'a,,b', '!', '10.0.0.0/8,']) {
    assert.equal(matchFromPatterns(p, '10.0.0.1'), 'invalid', p);
    assert.notEqual(validateFromPatterns(p), null, p);
  }
  // Invalid wins even where a negation would have rejected first.
  assert.equal(matchFromPatterns('!10.0.0.1,10.0.0.1/8', '10.0.0.1'), 'invalid');
  assert.equal(validateFromPatterns('10.0.0.0/8,!10.0.0.1,*.x'), null);
});

test('cidrContains', () => {
  assert.equal(cidrContains('10.0.0.0/8', '10.1.1.1'), true);
  assert.equal(cidrContains('10.0.0.0/8', '192.0.2.1'), false);
  assert.equal(cidrContains('10.0.0.0/8', '::ffff:10.1.1.1'), true);
  assert.equal(cidrContains('10.0.0.0/8', '::1'), false);
  assert.equal(cidrContains('10.0.0.0/8', 'not-an-ip'), false);
  assert.equal(cidrContains('192.0.2.1', '192.0.2.1'), true);
  assert.equal(cidrContains('fd00::/8', 'fdff::1'), true);
  assert.equal(cidrContains('fd00::/8', 'fe00::1'), false);
  assert.equal(cidrContains('fc00::/7', 'fdff::1'), true);
  assert.equal(cidrContains('fd00::/7', 'fd00::1'), 'invalid'); // host bit set
  assert.equal(cidrContains('10.0.0.1/8', '10.0.0.1'), 'invalid');
  assert.equal(cidrContains('10.*', '10.0.0.1'), 'invalid');
});

test('address helpers', () => {
  assert.equal(normalizeIp('2001:0DB8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1');
  assert.equal(normalizeIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  assert.equal(normalizeIp('0:0:0:0:0:0:0:0'), '::');
  assert.equal(normalizeIp('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(normalizeIp('1:2:3:4:5:6:7::'), '1:2:3:4:5:6:7:0');
  assert.equal(normalizeIp('010.0.0.1'), null);
  assert.equal(normalizeIp('1.2.3'), null);
  assert.equal(normalizeIp('1:2:3:4:5:6:7:8:9'), null);
  assert.equal(normalizeIp('1::2::3'), null);
  assert.equal(normalizeIp(':::'), null);
  assert.equal(isLoopbackIp('127.8.9.10'), true);
  assert.equal(isLoopbackIp('::1'), true);
  assert.equal(isLoopbackIp('::ffff:127.0.0.1'), true);
  assert.equal(isLoopbackIp('::2'), false);
  assert.equal(isLoopbackIp('128.0.0.1'), false);
  assert.equal(isLoopbackIp('localhost'), false);
});
