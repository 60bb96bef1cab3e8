// The tarpit and per-source limit as the spec defines them (§5.2, §5.3), with a fake clock:
// the companion's state machine that every instance's accept and auth costs feed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ENTRY_LINGER_MS, SourceDefences, sourceKey } from '../../src/companion/source-defences.ts';
import { TARPIT_COST } from '../../src/companion/tarpit-costs.ts';
import { DISCONNECT_TOO_MANY_CONNECTIONS, tooManyConnections } from '../../src/connection/refusal.ts';

const tarpit = { tarpit: true, maxPerIp: 0 };

test('IPv4 and v4-mapped addresses are one source; port-less, scope-less, per listener', () => {
  assert.equal(sourceKey('l', '192.0.2.7'), sourceKey('l', '::FFFF:192.0.2.7'));
  assert.equal(sourceKey('l', 'fe80::1%eth0'), sourceKey('l', 'fe80::1'));
  assert.notEqual(sourceKey('a', '192.0.2.7'), sourceKey('b', '192.0.2.7'));
});

test('a full bucket absorbs ten accepts; the eleventh within the same second starts the delay', () => {
  const d = new SourceDefences();
  const k = sourceKey('l', '192.0.2.7');
  for (let i = 0; i < 10; i++) assert.deepEqual(d.admit(k, tarpit, 1_000_000), { reject: false, delayMs: 0 });
  assert.deepEqual(d.admit(k, tarpit, 1_000_000), { reject: false, delayMs: 100 });
  assert.deepEqual(d.admit(k, tarpit, 1_000_000), { reject: false, delayMs: 200 });
  // another source is untouched
  assert.deepEqual(d.admit(sourceKey('l', '192.0.2.8'), tarpit, 1_000_000), { reject: false, delayMs: 0 });
});

test('within the 60 s window a paid-up source comes down 100 ms per charge, never below 100 ms; after it, to 0', () => {
  const d = new SourceDefences();
  const k = sourceKey('l', '192.0.2.7');
  let t = 0;
  for (let i = 0; i < 14; i++) d.admit(k, tarpit, t); // 4 in debt: 400 ms
  assert.equal(d.delay(k), 400);
  t += 20_000; // refilled (burst 10)
  assert.equal(d.charge(k, TARPIT_COST.publickey, t), 300);
  assert.equal(d.charge(k, TARPIT_COST.publickey, t), 200);
  assert.equal(d.charge(k, TARPIT_COST.publickey, t), 100);
  assert.equal(d.charge(k, TARPIT_COST.publickey, t), 100);
  t += 41_000; // past tarpit_until (60 s after the last debt)
  assert.equal(d.charge(k, TARPIT_COST.none, t), 0);
});

test('the delay grows by 100 ms per charge in debt and stops at 60 s', () => {
  const d = new SourceDefences();
  const k = sourceKey('l', '2001:db8::1');
  d.admit(k, tarpit, 0);
  let last = 0;
  for (let i = 0; i < 700; i++) last = d.charge(k, TARPIT_COST.invalidUserName, 0);
  assert.equal(last, 60_000);
});

test('without tarpit, charges are free; max_connections_per_ip counts open connections until released', () => {
  const d = new SourceDefences();
  const k = sourceKey('l', '192.0.2.7');
  const limit = { tarpit: false, maxPerIp: 2 };
  assert.equal(d.admit(k, limit, 0).reject, false);
  assert.equal(d.admit(k, limit, 0).reject, false);
  assert.equal(d.admit(k, limit, 0).reject, true);
  assert.equal(d.charge(k, 1000, 0), 0);
  d.release(k, 10);
  assert.equal(d.admit(k, limit, 20).reject, false);
});

test('entries without connections linger five minutes, then go', () => {
  const d = new SourceDefences();
  const k = sourceKey('l', '192.0.2.7');
  for (let i = 0; i < 12; i++) d.admit(k, tarpit, 0);
  for (let i = 0; i < 12; i++) d.release(k, 1000);
  d.sweep(1000 + ENTRY_LINGER_MS - 1);
  assert.equal(d.size, 1);
  assert.equal(d.delay(k), 200, 'the delay survives the connections');
  d.sweep(1000 + ENTRY_LINGER_MS);
  assert.equal(d.size, 0);
});

test('listeners without tarpit or limit keep no state', () => {
  const d = new SourceDefences();
  assert.deepEqual(d.admit(sourceKey('l', '192.0.2.7'), { tarpit: false, maxPerIp: 0 }, 0), { reject: false, delayMs: 0 });
  assert.equal(d.size, 0);
});

test('the refusal is the identification line plus a 48-byte unencrypted DISCONNECT 12', () => {
  const out = tooManyConnections('lukko_0.1.0');
  const ident = 'SSH-2.0-lukko_0.1.0\r\n';
  assert.equal(out.subarray(0, ident.length).toString(), ident);
  const packet = out.subarray(ident.length);
  assert.equal(packet.length, 48);
  assert.equal(packet.readUInt32BE(0), 44);
  const padding = packet[4]!;
  assert.ok(padding >= 4);
  assert.equal(packet[5], 1); // SSH_MSG_DISCONNECT
  assert.equal(packet.readUInt32BE(6), DISCONNECT_TOO_MANY_CONNECTIONS);
  const len = packet.readUInt32BE(10);
  assert.equal(packet.subarray(14, 14 + len).toString(), 'Too many connections');
  assert.equal(packet.subarray(14 + len + 4, 14 + len + 6).toString(), 'en');
});
