import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { AuthorizedKey } from '../../src/auth/authorized-keys.ts';
import { parseKeyOptions, resolveKeyOptions } from '../../src/auth/key-options.ts';
import type { KeyOptions } from '../../src/auth/key-options.ts';
import {
  keyLineUsable,
  mergePolicies,
  permitListenAllows,
  permitOpenAllows,
  policyFromKeyOptions,
  unrestrictedPolicy,
} from '../../src/auth/policy.ts';
import type { Policy } from '../../src/auth/policy.ts';

function opts(text: string): KeyOptions {
  if (text === '') return resolveKeyOptions([]);
  const r = parseKeyOptions(text);
  if (!r.ok) assert.fail(r.reason);
  return r.options;
}

function pol(text: string, origin = 'keys:1'): Policy {
  return policyFromKeyOptions(opts(text), origin);
}

function merged(a: Policy, b: Policy): Policy {
  const m = mergePolicies(a, b);
  if ('conflict' in m) assert.fail(m.conflict);
  return m;
}

test('unrestrictedPolicy allows everything and records nothing', () => {
  assert.deepEqual(unrestrictedPolicy(), {
    exec: true,
    pty: true,
    portForwarding: true,
    agentForwarding: true,
    x11Forwarding: true,
    userRc: true,
    homeReadOnly: false,
    permitOpen: [],
    permitListen: [],
    origins: [],
  });
  assert.equal(permitOpenAllows(unrestrictedPolicy(), 'anything', 1).allowed, true);
  assert.equal(permitListenAllows(unrestrictedPolicy(), '', 1).allowed, true);
});

test('policyFromKeyOptions carries every restriction and names its origin', () => {
  const p = pol(
    'restrict,pty,command="/usr/bin/backup",home-read-only,port-forwarding,permitopen="db:5432",permitlisten="8080",expiry-time="20300101Z"',
    '/home/a/.ssh/authorized_keys:3',
  );
  assert.equal(p.forcedCommand, '/usr/bin/backup');
  assert.equal(p.pty, true);
  assert.equal(p.portForwarding, true);
  assert.equal(p.agentForwarding, false);
  assert.equal(p.x11Forwarding, false);
  assert.equal(p.userRc, false);
  assert.equal(p.homeReadOnly, true);
  assert.deepEqual(p.permitOpen, [[{ host: 'db', port: 5432 }]]);
  assert.deepEqual(p.permitListen, [[{ host: null, port: 8080 }]]);
  assert.equal(p.expiresAt, Date.UTC(2030, 0, 1));
  assert.deepEqual(p.origins, [
    '/home/a/.ssh/authorized_keys:3 restrict',
    '/home/a/.ssh/authorized_keys:3 command="/usr/bin/backup"',
    '/home/a/.ssh/authorized_keys:3 home-read-only',
    '/home/a/.ssh/authorized_keys:3 permitopen="db:5432"',
    '/home/a/.ssh/authorized_keys:3 permitlisten="8080"',
    '/home/a/.ssh/authorized_keys:3 expiry-time="20300101Z"',
  ]);
  // An overridden restriction leaves no trace; the one in force is named.
  assert.deepEqual(pol('no-pty,pty,no-user-rc', 'k:9').origins, ['k:9 no-user-rc']);
  assert.deepEqual(pol('', 'k:1').origins, []);
});

test('policyFromKeyOptions of no options equals the unrestricted policy', () => {
  assert.deepEqual(policyFromKeyOptions(resolveKeyOptions([]), 'x'), unrestrictedPolicy());
});

test('mergePolicies: booleans AND, home-read-only OR, in both orders', () => {
  const a = pol('no-pty,home-read-only', 'a');
  const b = pol('no-agent-forwarding,no-X11-forwarding', 'b');
  for (const m of [merged(a, b), merged(b, a)]) {
    assert.equal(m.pty, false);
    assert.equal(m.agentForwarding, false);
    assert.equal(m.x11Forwarding, false);
    assert.equal(m.portForwarding, true);
    assert.equal(m.userRc, true);
    assert.equal(m.homeReadOnly, true);
    assert.deepEqual([...m.origins].sort(), ['a home-read-only', 'a no-pty', 'b no-X11-forwarding', 'b no-agent-forwarding']);
  }
  // Merging with a permissive source never loosens anything.
  assert.deepEqual(merged(a, unrestrictedPolicy()), a);
  assert.deepEqual(merged(unrestrictedPolicy(), a), a);
});

test('mergePolicies: only ever adds restrictions (exhaustive over the flags)', () => {
  const keys = ['pty', 'portForwarding', 'agentForwarding', 'x11Forwarding', 'userRc'] as const;
  for (let mask = 0; mask < 1 << 10; mask++) {
    const a = unrestrictedPolicy();
    const b = unrestrictedPolicy();
    keys.forEach((k, i) => {
      a[k] = (mask & (1 << i)) !== 0;
      b[k] = (mask & (1 << (i + 5))) !== 0;
    });
    const m = merged(a, b);
    for (const k of keys) assert.equal(m[k], a[k] && b[k]);
  }
});

test('mergePolicies: permit lists pile up; expiry is the earlier', () => {
  const a = pol('permitopen="db:5432",permitopen="cache:6379",expiry-time="20300101Z"', 'a');
  const b = pol('permitopen="db:*",expiry-time="20290101Z"', 'b');
  const m = merged(a, b);
  assert.deepEqual(m.permitOpen, [
    [
      { host: 'db', port: 5432 },
      { host: 'cache', port: 6379 },
    ],
    [{ host: 'db', port: '*' }],
  ]);
  assert.equal(m.expiresAt, Date.UTC(2029, 0, 1));
  assert.equal(merged(b, a).expiresAt, Date.UTC(2029, 0, 1));
  assert.equal(merged(a, unrestrictedPolicy()).expiresAt, Date.UTC(2030, 0, 1));
  assert.equal(merged(unrestrictedPolicy(), unrestrictedPolicy()).expiresAt, undefined);
  // db:5432 is in both sources; cache only in the first.
  assert.equal(permitOpenAllows(m, 'db', 5432).allowed, true);
  assert.equal(permitOpenAllows(m, 'cache', 6379).allowed, false);
  assert.equal(permitOpenAllows(a, 'cache', 6379).allowed, true);
});

test('mergePolicies: forced commands', () => {
  const a = pol('command="/bin/a"', 'a:1');
  const same = pol('command="/bin/a"', 'b:1');
  const other = pol('command="/bin/b"', 'b:1');
  assert.equal(merged(a, same).forcedCommand, '/bin/a');
  assert.equal(merged(a, unrestrictedPolicy()).forcedCommand, '/bin/a');
  assert.equal(merged(unrestrictedPolicy(), other).forcedCommand, '/bin/b');
  assert.equal(merged(unrestrictedPolicy(), unrestrictedPolicy()).forcedCommand, undefined);
  const c = mergePolicies(a, other);
  assert.ok('conflict' in c);
  assert.match(c.conflict, /"\/bin\/a".*a:1 command=.*"\/bin\/b".*b:1 command=/);
});

test('mergePolicies does not alias or mutate its inputs', () => {
  const a = pol('permitopen="h:1"', 'a');
  const b = pol('permitopen="h:2"', 'b');
  const before = structuredClone([a, b]);
  const m = merged(a, b);
  m.permitOpen[0]?.push('none');
  m.origins.push('x');
  assert.deepEqual([a, b], before);
});

test('permitOpenAllows', () => {
  const p = pol('permitopen="db.example:5432",permitopen="[2001:db8::1]:*",permitopen="10.0.0.1:22"');
  assert.deepEqual(permitOpenAllows(p, 'db.example', 5432), { allowed: true, rule: 'permitopen="db.example:5432"' });
  assert.equal(permitOpenAllows(p, 'DB.Example', 5432).allowed, true);
  assert.equal(permitOpenAllows(p, 'db.example', 5433).allowed, false);
  assert.equal(permitOpenAllows(p, 'db.example.', 5432).allowed, false);
  assert.equal(permitOpenAllows(p, 'evil.example', 5432).allowed, false);
  assert.deepEqual(permitOpenAllows(p, '2001:db8:0::1', 9), { allowed: true, rule: 'permitopen="[2001:db8::1]:*"' });
  assert.equal(permitOpenAllows(p, '2001:db8::2', 9).allowed, false);
  assert.equal(permitOpenAllows(p, '10.0.0.1', 22).allowed, true);
  assert.equal(permitOpenAllows(p, '::ffff:10.0.0.1', 22).allowed, true);
  assert.equal(permitOpenAllows(p, '10.0.0.10', 22).allowed, false);
  // No pattern semantics in permitopen hosts: `*` is only special as the whole host.
  assert.equal(permitOpenAllows(pol('permitopen="*:443"'), 'anything.example', 443).allowed, true);
  assert.equal(permitOpenAllows(pol('permitopen="*:443"'), 'anything.example', 80).allowed, false);
  const denied = permitOpenAllows(p, 'x', 1);
  assert.equal(denied.allowed, false);
  assert.match(denied.rule ?? '', /not matched by permitopen="db.example:5432",permitopen="\[2001:db8::1\]:\*"/);
});

test('permitopen="none" allows nothing; no-port-forwarding beats any rule', () => {
  const none = pol('permitopen="none"');
  assert.equal(permitOpenAllows(none, 'localhost', 22).allowed, false);
  assert.equal(permitOpenAllows(none, '*', 22).allowed, false);
  const off = pol('no-port-forwarding,permitopen="h:1",permitlisten="1"');
  assert.deepEqual(permitOpenAllows(off, 'h', 1), { allowed: false, rule: 'port forwarding disabled' });
  assert.equal(permitListenAllows(off, 'localhost', 1).allowed, false);
  assert.equal(permitOpenAllows(pol('restrict,permitopen="h:1"'), 'h', 1).allowed, false);
  assert.equal(permitOpenAllows(pol('restrict,port-forwarding,permitopen="h:1"'), 'h', 1).allowed, true);
  assert.equal(permitOpenAllows(merged(pol('permitopen="h:1"'), pol('permitopen="none"')), 'h', 1).allowed, false);
});

test('permitListenAllows: bare port means loopback as the client sends it', () => {
  const p = pol('permitlisten="8080"');
  for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    assert.equal(permitListenAllows(p, host, 8080).allowed, true, host);
  }
  for (const host of ['', '0.0.0.0', '::', '*', '192.0.2.1', 'example.com']) {
    assert.equal(permitListenAllows(p, host, 8080).allowed, false, JSON.stringify(host));
  }
  assert.equal(permitListenAllows(p, 'localhost', 8081).allowed, false);
  assert.equal(permitListenAllows(p, 'localhost', 0).allowed, false);
  assert.equal(permitListenAllows(pol('permitlisten="*"'), 'localhost', 0).allowed, true);
});

test('permitListenAllows: explicit hosts, wildcards, none', () => {
  const p = pol('permitlisten="localhost:2000",permitlisten="*.lan:*",permitlisten="[::1]:3000",permitlisten="192.0.2.?:4000"');
  assert.equal(permitListenAllows(p, 'localhost', 2000).allowed, true);
  // "localhost" and 127.0.0.1 are different names to an explicit rule (sshd(8)).
  assert.equal(permitListenAllows(p, '127.0.0.1', 2000).allowed, false);
  assert.equal(permitListenAllows(p, 'box.LAN', 1234).allowed, true);
  assert.equal(permitListenAllows(p, 'lan', 1234).allowed, false);
  assert.equal(permitListenAllows(p, '0:0::1', 3000).allowed, true);
  assert.equal(permitListenAllows(p, '::1', 3001).allowed, false);
  assert.equal(permitListenAllows(p, '192.0.2.9', 4000).allowed, true);
  assert.equal(permitListenAllows(p, '192.0.2.19', 4000).allowed, false);
  const any = pol('permitlisten="*:8080"');
  assert.equal(permitListenAllows(any, '', 8080).allowed, true);
  assert.equal(permitListenAllows(any, '0.0.0.0', 8080).allowed, true);
  assert.equal(permitListenAllows(pol('permitlisten="none"'), 'localhost', 8080).allowed, false);
  const both = merged(pol('permitlisten="*:*"'), pol('permitlisten="8080"'));
  assert.equal(permitListenAllows(both, 'localhost', 8080).allowed, true);
  assert.equal(permitListenAllows(both, '', 8080).allowed, false);
});

function key(text: string): AuthorizedKey {
  return { source: '/k', line: 7, keyType: 'ssh-ed25519', blob: Buffer.alloc(0), comment: '', options: opts(text) };
}

test('keyLineUsable: from=', () => {
  const ctx = (clientIp: string) => ({ clientIp, now: 0 });
  assert.deepEqual(keyLineUsable(key(''), ctx('192.0.2.1')), { ok: true });
  const k = key('from="10.0.0.0/8,!10.6.6.6"');
  assert.deepEqual(keyLineUsable(k, ctx('10.1.1.1')), { ok: true });
  assert.deepEqual(keyLineUsable(k, ctx('::ffff:10.1.1.1')), { ok: true });
  const r = keyLineUsable(k, ctx('10.6.6.6'));
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /^\/k:7: client address 10.6.6.6 not allowed by from=/);
  assert.equal(keyLineUsable(k, ctx('192.0.2.1')).ok, false);
  // A from= that somehow bypassed the parser still fails closed.
  const bypass: AuthorizedKey = {
    ...k,
    options: resolveKeyOptions([{ kind: 'from', text: 'from="10.0.0.1/8"', patterns: '10.0.0.1/8' }]),
  };
  const inv = keyLineUsable(bypass, ctx('10.0.0.1'));
  assert.equal(inv.ok, false);
  assert.match(!inv.ok ? inv.reason : '', /invalid from=/);
});

test('keyLineUsable: expiry-time', () => {
  const k = key('expiry-time="20300101Z"');
  const t = Date.UTC(2030, 0, 1);
  assert.deepEqual(keyLineUsable(k, { clientIp: '::1', now: t - 1 }), { ok: true });
  assert.deepEqual(keyLineUsable(k, { clientIp: '::1', now: t }), { ok: true });
  const r = keyLineUsable(k, { clientIp: '::1', now: t + 1 });
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /expired at 2030-01-01T00:00:00.000Z/);
  assert.equal(keyLineUsable(key('expiry-time="20300101Z",from="::1"'), { clientIp: '::2', now: 0 }).ok, false);
});
