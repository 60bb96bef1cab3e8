import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseExpiryTime, parseKeyOptions } from '../../src/auth/key-options.ts';
import type { KeyOptions } from '../../src/auth/key-options.ts';

function ok(text: string): KeyOptions {
  const r = parseKeyOptions(text);
  if (!r.ok) assert.fail(`expected ${JSON.stringify(text)} to parse, got: ${r.reason}`);
  return r.options;
}

function bad(text: string): string {
  const r = parseKeyOptions(text);
  if (r.ok) assert.fail(`expected ${JSON.stringify(text)} to be refused`);
  return r.reason;
}

type Flags = Pick<KeyOptions, 'pty' | 'portForwarding' | 'agentForwarding' | 'x11Forwarding' | 'userRc'>;

function flags(o: KeyOptions): Flags {
  return {
    pty: o.pty,
    portForwarding: o.portForwarding,
    agentForwarding: o.agentForwarding,
    x11Forwarding: o.x11Forwarding,
    userRc: o.userRc,
  };
}

const ALL_ON: Flags = { pty: true, portForwarding: true, agentForwarding: true, x11Forwarding: true, userRc: true };
const ALL_OFF: Flags = { pty: false, portForwarding: false, agentForwarding: false, x11Forwarding: false, userRc: false };

test('each flag pair switches exactly its facility', () => {
  const cases: Array<[string, keyof Flags]> = [
    ['pty', 'pty'],
    ['port-forwarding', 'portForwarding'],
    ['agent-forwarding', 'agentForwarding'],
    ['X11-forwarding', 'x11Forwarding'],
    ['user-rc', 'userRc'],
  ];
  for (const [name, field] of cases) {
    assert.deepEqual(flags(ok(`no-${name}`)), { ...ALL_ON, [field]: false }, `no-${name}`);
    // Positive form re-enables after restrict, touching nothing else.
    assert.deepEqual(flags(ok(`restrict,${name}`)), { ...ALL_OFF, [field]: true }, `restrict,${name}`);
  }
  assert.deepEqual(flags(ok('pty')), ALL_ON);
});

test('option names are case-insensitive', () => {
  const o = ok('NO-PTY,No-X11-Forwarding,x11-FORWARDING,Restrict,PTY,COMMAND="ls",From="10.0.0.1",Home-Read-Only');
  assert.deepEqual(flags(o), { ...ALL_OFF, pty: true });
  assert.equal(o.command, 'ls');
  assert.equal(o.from, '10.0.0.1');
  assert.equal(o.homeReadOnly, true);
  assert.deepEqual(
    o.list.map((x) => x.text),
    ['no-pty', 'no-X11-forwarding', 'X11-forwarding', 'restrict', 'pty', 'command="ls"', 'from="10.0.0.1"', 'home-read-only'],
  );
});

test('restrict disables everything optional; order decides', () => {
  const r = ok('restrict');
  assert.deepEqual(flags(r), ALL_OFF);
  assert.equal(r.homeReadOnly, false);
  assert.deepEqual(flags(ok('pty,restrict')), ALL_OFF);
  assert.deepEqual(flags(ok('restrict,pty,port-forwarding')), { ...ALL_OFF, pty: true, portForwarding: true });
  assert.equal(ok('no-pty,pty').pty, true);
  assert.equal(ok('pty,no-pty').pty, false);
  assert.match(bad('restrict=yes'), /"restrict" does not take a value/);
});

test('flag options given a value are refused', () => {
  for (const f of ['no-pty=x', 'pty=""', 'no-port-forwarding="no"', 'X11-forwarding=1', 'no-user-rc=', 'agent-forwarding="yes"']) {
    assert.match(bad(f), /does not take a value/, f);
  }
});

test('command: quoting, \\" escapes, other backslashes literal', () => {
  assert.equal(ok('command="echo \\"hi\\""').command, 'echo "hi"');
  assert.equal(ok('command="a\\nb\\\\c"').command, 'a\\nb\\\\c');
  // `\\"` = a literal backslash, then an escaped quote (only `\"` is an escape).
  assert.equal(ok('command="a\\\\"b"').command, 'a\\"b');
  assert.equal(ok('command="x,y z"').command, 'x,y z');
  assert.match(bad('command=""'), /empty value/);
  assert.match(bad('command=ls'), /requires a double-quoted value/);
  assert.match(bad('command'), /requires a value/);
  assert.match(bad('command="a",command="a"'), /more than once/);
  assert.match(bad('command="abc'), /missing closing quote/);
  assert.match(bad('command="abc\\"'), /missing closing quote/);
  assert.match(bad('command="a"b'), /unexpected text after closing quote/);
});

test('from=: valid lists kept verbatim, invalid ones refused', () => {
  assert.equal(ok('from="*.example.com,!10.1.2.3,10.0.0.0/8,2001:db8::/32"').from, '*.example.com,!10.1.2.3,10.0.0.0/8,2001:db8::/32');
  assert.match(bad('from="10.1.2.3/8"'), /option "from": invalid address\/network "10.1.2.3\/8"/);
  assert.match(bad('from="10.0.0.0/33"'), /invalid address/);
  assert.match(bad('from=""'), /option "from": empty pattern list/);
  assert.match(bad('from="a,,b"'), /empty pattern/);
  assert.match(bad('from="a",from="b"'), /"from" given more than once/);
  assert.match(bad('from=10.0.0.1'), /double-quoted/);
});

test('home-read-only: flag, or any value for compatibility', () => {
  assert.equal(ok('no-pty').homeReadOnly, false);
  assert.equal(ok('home-read-only').homeReadOnly, true);
  assert.equal(ok('home-read-only=yes').homeReadOnly, true);
  assert.equal(ok('home-read-only="anything at all"').homeReadOnly, true);
  assert.equal(ok('home-read-only=').homeReadOnly, true);
  assert.match(bad('no-home-read-only'), /unsupported option "no-home-read-only"/);
  assert.match(bad('home-read-only=a"b'), /stray quote/);
});

test('permitopen syntax', () => {
  const o = ok('permitopen="db.example:5432",permitopen="[2001:DB8::1]:22",permitopen="10.0.0.1:*",permitopen="*:443"');
  assert.deepEqual(o.permitOpen, [
    { host: 'db.example', port: 5432 },
    { host: '2001:db8::1', port: 22 },
    { host: '10.0.0.1', port: '*' },
    { host: '*', port: 443 },
  ]);
  assert.deepEqual(ok('permitopen="none"').permitOpen, ['none']);
  assert.deepEqual(ok('no-pty').permitOpen, []);
  const refused: Array<[string, RegExp]> = [
    ['permitopen="host"', /expected host:port/],
    ['permitopen="22"', /expected host:port/],
    ['permitopen="host:"', /invalid port/],
    ['permitopen="host:0"', /invalid port/],
    ['permitopen="host:65536"', /invalid port/],
    ['permitopen="host:22x"', /invalid port/],
    ['permitopen=":22"', /empty host/],
    ['permitopen="*.example.com:22"', /literal/],
    ['permitopen="db?:22"', /literal/],
    ['permitopen="2001:db8::1:22"', /expected host:port/],
    ['permitopen="[2001:db8::1]22"', /expected host:port/],
    ['permitopen="[db.example]:22"', /invalid address in brackets/],
    ['permitopen="a:1,b:2"', /expected host:port/],
    ['permitopen="a:1,b"', /invalid port/],
    ['permitopen=a:1', /double-quoted/],
    ['permitopen="none",permitopen="a:1"', /"none" combined/],
  ];
  for (const [text, re] of refused) assert.match(bad(text), re, text);
});

test('permitlisten syntax', () => {
  const o = ok('permitlisten="8080",permitlisten="localhost:*",permitlisten="*.lan:2222",permitlisten="[::1]:9000"');
  assert.deepEqual(o.permitListen, [
    { host: null, port: 8080 },
    { host: 'localhost', port: '*' },
    { host: '*.lan', port: 2222 },
    { host: '::1', port: 9000 },
  ]);
  assert.deepEqual(ok('permitlisten="*"').permitListen, [{ host: null, port: '*' }]);
  assert.deepEqual(ok('permitlisten="none"').permitListen, ['none']);
  for (const text of ['permitlisten="0"', 'permitlisten="host:"', 'permitlisten="a b:1"', 'permitlisten="h/x:1"', 'permitlisten="none",permitlisten="1"']) {
    bad(text);
  }
  assert.deepEqual(
    ok('permitlisten="8080",permitlisten="[::1]:9000",permitopen="none"').list.map((x) => x.text),
    ['permitlisten="8080"', 'permitlisten="[::1]:9000"', 'permitopen="none"'],
  );
});

function withTz(tz: string, fn: () => void): void {
  const saved = process.env.TZ;
  try {
    process.env.TZ = tz;
    fn();
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
}

test('expiry-time with Z, UTC suffix, and all three lengths', () => withTz('Asia/Tokyo', () => {
  // Z must mean UTC even when the process runs in another zone.
  assert.notEqual(parseExpiryTime('20300102'), Date.UTC(2030, 0, 2));
  assert.equal(parseExpiryTime('20300102Z'), Date.UTC(2030, 0, 2));
  assert.equal(parseExpiryTime('203001021314Z'), Date.UTC(2030, 0, 2, 13, 14));
  assert.equal(parseExpiryTime('20300102131415Z'), Date.UTC(2030, 0, 2, 13, 14, 15));
  assert.equal(parseExpiryTime('20300102131415z'), Date.UTC(2030, 0, 2, 13, 14, 15));
  assert.equal(parseExpiryTime('20300102131415UTC'), Date.UTC(2030, 0, 2, 13, 14, 15));
  assert.equal(parseExpiryTime('20240229Z'), Date.UTC(2024, 1, 29));
  assert.equal(ok('expiry-time="20300102Z"').expiresAt, Date.UTC(2030, 0, 2));
  // Several: the earliest wins.
  assert.equal(ok('expiry-time="20300102Z",expiry-time="20290101Z",expiry-time="20310101Z"').expiresAt, Date.UTC(2029, 0, 1));
  assert.equal(ok('no-pty').expiresAt, undefined);
}));

test('expiry-time without Z is local time', () => {
  withTz('America/New_York', () => {
    assert.equal(parseExpiryTime('203001021314'), Date.UTC(2030, 0, 2, 18, 14)); // EST = UTC-5
    assert.equal(parseExpiryTime('20300702'), Date.UTC(2030, 6, 2, 4)); // EDT = UTC-4
  });
  withTz('Asia/Tokyo', () => {
    assert.equal(parseExpiryTime('20300102131415'), Date.UTC(2030, 0, 2, 4, 14, 15));
  });
});

test('malformed expiry-time makes the line unusable', () => {
  for (const v of ['2030010', '203001021', '2030010213', '203001021314151', 'Z', '', '2030-01-02', '20301301', '20300230', '20230229', '20300100', '203001022400', '203001021260', '20300102121260', '19691231', 'abcdefgh', '20300102X', ' 20300102']) {
    assert.equal(parseExpiryTime(v), null, v);
    assert.match(bad(`expiry-time="${v}"`), /option "expiry-time": invalid time/, v);
  }
  assert.match(bad('expiry-time=20300102'), /double-quoted/);
});

test('unsupported OpenSSH options and unknown names are refused by name', () => {
  for (const [text, name] of [
    ['environment="A=b"', 'environment'],
    ['tunnel="0"', 'tunnel'],
    ['principals="a"', 'principals'],
    ['cert-authority', 'cert-authority'],
    ['no-touch-required', 'no-touch-required'],
    ['verify-required', 'verify-required'],
    ['no-pty,bogus', 'bogus'],
    ['Environment="A=b"', 'Environment'],
  ] as const) {
    assert.equal(bad(text), `unsupported option "${name}"`, text);
  }
});

test('list structure errors', () => {
  assert.match(bad(',no-pty'), /empty option name/);
  assert.match(bad('no-pty,,pty'), /empty option name/);
  assert.match(bad('no-pty, pty'), /ends with a comma/);
  assert.match(bad('no-pty,'), /ends with a comma/);
});

test('rest is what follows the list, blanks skipped', () => {
  const r = parseKeyOptions('no-pty,command="a b" \t  ssh-ed25519 AAAA c');
  assert.ok(r.ok);
  assert.equal(r.rest, 'ssh-ed25519 AAAA c');
  assert.deepEqual(
    r.options.list.map((o) => o.kind),
    ['flag', 'command'],
  );
});
