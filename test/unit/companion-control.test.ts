// The companion's control side without sockets: the helper's frame format, who is trusted,
// what each spec vector leads to for a trusted and an untrusted sender, and the Zeroconf
// service descriptions and state files.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfigText } from '../../src/config/index.ts';
import { HelperFrameSplitter, HelperStreamError } from '../../src/companion/control-frames.ts';
import type { ControlSource } from '../../src/companion/control-frames.ts';
import { judgeSender, planDatagram } from '../../src/companion/control-permission.ts';
import type { DatagramPlan } from '../../src/companion/control-permission.ts';
import { controlBlockArgs } from '../../src/companion/control-receiver.ts';
import { verboseLevel as verboseLogLevel } from '../../src/log/logger.ts';
import { debianArch, listenerVisible, planZeroconf, zeroconfInstanceName, zeroconfServiceType, zeroconfTxt } from '../../src/companion/zeroconf-service.ts';

const vectors = (
  JSON.parse(readFileSync(new URL('../../../shared/testdata/protocol-vectors.json', import.meta.url), 'utf8')) as {
    control: Record<string, { hex: string }>;
  }
).control;
const vector = (name: string): Buffer => Buffer.from(vectors[name]!.hex, 'hex');

/** A frame as lukko-control-recv writes it. */
function frame(o: { socket?: number; family: 0 | 4 | 6; creds?: [number, number, number]; port?: number; addr?: number[]; truncated?: boolean; data: Buffer }): Buffer {
  const h = Buffer.alloc(39);
  h.writeUInt32BE(35 + o.data.length, 0);
  h[4] = 'D'.charCodeAt(0);
  h.writeUInt16BE(o.socket ?? 0, 5);
  h[7] = o.family;
  h[8] = (o.creds ? 1 : 0) | (o.truncated ? 2 : 0);
  const [uid, gid, pid] = o.creds ?? [0xffffffff, 0xffffffff, 0xffffffff];
  h.writeUInt32BE(uid, 9);
  h.writeUInt32BE(gid, 13);
  h.writeUInt32BE(pid, 17);
  h.writeUInt16BE(o.port ?? 0, 21);
  Buffer.from(o.addr ?? []).copy(h, 23);
  return Buffer.concat([h, o.data]);
}

test('helper frames: ready, AF_UNIX with credentials, IPv4, IPv4-mapped and IPv6, split anywhere', () => {
  const stream = Buffer.concat([
    Buffer.from([0, 0, 0, 1, 'R'.charCodeAt(0)]),
    frame({ family: 0, creds: [1000, 100, 4242], data: vector('V2') }),
    frame({ socket: 2, family: 4, port: 5478, addr: [192, 0, 2, 7], data: Buffer.alloc(0) }),
    frame({ family: 6, port: 1, addr: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1], data: Buffer.from('x') }),
    frame({ family: 6, port: 2, addr: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], truncated: true, data: Buffer.from('y') }),
    frame({ family: 0, data: Buffer.from('z') }),
  ]);
  for (const step of [1, 3, 7, stream.length]) {
    const s = new HelperFrameSplitter();
    const frames = [];
    for (let i = 0; i < stream.length; i += step) frames.push(...s.push(stream.subarray(i, i + step)));
    assert.deepEqual(frames[0], { kind: 'ready' });
    assert.deepEqual(frames[1], { kind: 'datagram', socket: 0, source: { kind: 'unix', uid: 1000, gid: 100, pid: 4242 }, truncated: false, data: vector('V2') });
    assert.deepEqual(frames[2], { kind: 'datagram', socket: 2, source: { kind: 'inet', address: '192.0.2.7', port: 5478 }, truncated: false, data: Buffer.alloc(0) });
    assert.deepEqual(frames.slice(3).map((f) => (f.kind === 'datagram' ? [f.source, f.truncated] : f)), [
      [{ kind: 'inet', address: '127.0.0.1', port: 1 }, false],
      [{ kind: 'inet', address: '2001:db8::1', port: 2 }, true],
      [{ kind: 'unix' }, false],
    ]);
  }
  assert.throws(() => new HelperFrameSplitter().push(Buffer.from([0, 0, 0, 0])), HelperStreamError);
  assert.throws(() => new HelperFrameSplitter().push(Buffer.from([0xff, 0, 0, 0])), HelperStreamError);
  assert.throws(() => new HelperFrameSplitter().push(Buffer.from([0, 0, 0, 2, 'Q'.charCodeAt(0), 0])), HelperStreamError);
});

const policy = { ownUid: 998, allowFrom: ['192.0.2.0/24', '2001:db8::/32'] };
const root: ControlSource = { kind: 'unix', uid: 0, gid: 0, pid: 1 };

test('senders: root and the own uid over AF_UNIX, allow_from networks over UDP; nobody else', () => {
  assert.equal(judgeSender(root, policy).trusted, true);
  assert.equal(judgeSender({ kind: 'unix', uid: 998, gid: 998, pid: 2 }, policy).trusted, true);
  const nobody = judgeSender({ kind: 'unix', uid: 65534, gid: 65534, pid: 3 }, policy);
  assert.deepEqual(nobody, { trusted: false, who: 'uid 65534 pid 3', why: "uid 65534 is neither root nor the companion's own (998)" });
  assert.equal(judgeSender({ kind: 'unix' }, policy).trusted, false);
  assert.equal(judgeSender({ kind: 'inet', address: '192.0.2.200', port: 9 }, policy).trusted, true);
  assert.equal(judgeSender({ kind: 'inet', address: '2001:db8:1::5', port: 9 }, policy).trusted, true);
  assert.deepEqual(judgeSender({ kind: 'inet', address: '198.51.100.1', port: 9 }, policy), {
    trusted: false,
    who: '198.51.100.1:9',
    why: 'the source is not in allow_from',
  });
  assert.equal(judgeSender({ kind: 'inet', address: '127.0.0.1', port: 9 }, { ownUid: 0, allowFrom: [] }).trusted, false);
  assert.equal(judgeSender({ kind: 'inet', address: '::1', port: 9 }, { ownUid: 0, allowFrom: ['::1'] }).who, '[::1]:9');
});

function plan(name: string, trusted: boolean): DatagramPlan {
  return planDatagram(vector(name), false, trusted ? judgeSender(root, policy) : judgeSender({ kind: 'inet', address: '198.51.100.1', port: 1 }, policy));
}
const kinds = (p: DatagramPlan): { run: string[]; refused: string[]; invalid: string[]; error?: string } => ({
  run: p.run.map((a) => (a.kind === 'verbose' ? `verbose ${a.level}` : a.kind === 'terminate-children' ? `terminate ${a.tag}` : a.kind)),
  refused: p.refused.map((a) => a.kind),
  invalid: p.invalid.map((a) => a.name),
  ...(p.error !== undefined ? { error: p.error } : {}),
});

test('spec vectors from a trusted sender: what runs, in order, and what is reported', () => {
  const none = { run: [], refused: [], invalid: [] };
  assert.deepEqual(kinds(plan('V1', true)), none);
  assert.deepEqual(kinds(plan('V2', true)), { ...none, run: ['verbose 3'] });
  assert.deepEqual(kinds(plan('V3', true)), { ...none, run: ['disable-zeroconf'] });
  assert.deepEqual(kinds(plan('V4', true)), { ...none, run: ['enable-zeroconf'] });
  assert.deepEqual(kinds(plan('V5', true)), { ...none, run: ['terminate site-42'] });
  assert.deepEqual(kinds(plan('V6', true)), { ...none, run: ['disable-zeroconf', 'terminate abcd'] });
  assert.deepEqual(kinds(plan('V7', true)), none);
  assert.deepEqual(kinds(plan('V8', true)), { ...none, invalid: ['VERBOSE'] });
  assert.deepEqual(kinds(plan('M1', true)), { ...none, error: 'wrong magic' });
  assert.deepEqual(kinds(plan('M2', true)), { ...none, error: 'odd control packet (length=5)' });
  assert.deepEqual(kinds(plan('M3', true)), { ...none, error: 'partial payload (length=4, expected=8)' });
  // M4: the complete command before the malformed part runs, as in the original.
  assert.deepEqual(kinds(plan('M4', true)), { ...none, run: ['disable-zeroconf'], error: 'partial payload (length=4, expected=8)' });
  assert.deepEqual(kinds(plan('M5', true)), { ...none, error: 'wrong magic' });
  assert.deepEqual(kinds(planDatagram(Buffer.alloc(0), false, judgeSender(root, policy))), { ...none, error: 'wrong magic' });
  assert.match(kinds(planDatagram(vector('V2'), true, judgeSender(root, policy))).error ?? '', /too long/);
});

test('spec vectors from an untrusted sender: nothing runs, every effective command is refused', () => {
  for (const name of ['V2', 'V3', 'V4', 'V5', 'V6', 'M4']) {
    const p = plan(name, false);
    assert.deepEqual(p.run, [], name);
    assert.ok(p.refused.length > 0, name);
  }
  // Stricter than the original: TERMINATE_CHILDREN (V5) from UDP is refused too.
  assert.deepEqual(kinds(plan('V5', false)).refused, ['terminate-children']);
  assert.deepEqual(kinds(plan('V6', false)).refused, ['disable-zeroconf', 'terminate-children']);
  assert.deepEqual(kinds(plan('V1', false)), { run: [], refused: [], invalid: [] });
});

test('VERBOSE levels as log levels', () => {
  assert.deepEqual([0, 1, 2, 3, 255].map(verboseLogLevel), ['error', 'info', 'debug', 'trace', 'trace']);
});

test('helper arguments for each kind of control block', () => {
  const c = parseConfigText(
    'control {\n bind "/run/lukko/control"\n}\ncontrol {\n bind "@ctl"\n}\ncontrol {\n bind "*"\n}\ncontrol {\n bind "127.0.0.1:9"\n interface lo\n}\ncontrol {\n bind "*:5478"\n multicast_group "224.0.0.42"\n}\ncontrol {\n bind "*"\n multicast_group "ff02::4242%eth0"\n}\n',
    { path: '/x.conf' },
  ).controls;
  assert.deepEqual(c.map(controlBlockArgs), [
    ['--unix', '/run/lukko/control'],
    ['--abstract', 'ctl'],
    ['--udp', '::', '5478'],
    ['--udp', '127.0.0.1', '9', '--interface', 'lo'],
    ['--udp', '0.0.0.0', '5478', '--group', '224.0.0.42'],
    ['--udp', '::', '5478', '--group', 'ff02::4242%eth0'],
  ]);
});

test('Zeroconf service type, instance name and TXT records (spec §6.1)', () => {
  assert.deepEqual(zeroconfServiceType('lukko'), { ok: true, type: '_lukko._tcp' });
  assert.deepEqual(zeroconfServiceType('_ssh._tcp'), { ok: true, type: '_ssh._tcp' });
  assert.deepEqual(zeroconfServiceType('_x-1._udp'), { ok: true, type: '_x-1._udp' });
  for (const bad of ['', '123', 'a_b', 'sixteen-chars-xx', '_lukko._sctp', '_._tcp', '_a.b._tcp']) assert.equal(zeroconfServiceType(bad).ok, false, bad);
  assert.equal(zeroconfInstanceName(1234), 'Lukko[1234]');
  assert.equal(debianArch('x64'), 'amd64');
  assert.equal(debianArch('arm64'), 'arm64');
  assert.equal(debianArch('riscv64'), undefined);
  const ls = parseConfigText(
    'listener {\n bind "*:22"\n zeroconf_service lukko\n zeroconf_weight 0.5\n}\nlistener {\n bind "*:23"\n zeroconf_service lukko\n zeroconf_weight 2\n}\nlistener {\n bind "*:24"\n zeroconf_service lukko\n}\n',
    { path: '/x.conf' },
  ).listeners;
  assert.deepEqual(ls.map((l) => zeroconfTxt(l, 'amd64')), [['arch=amd64', 'weight=0.5'], ['arch=amd64', 'weight=2'], ['arch=amd64']]);
  assert.deepEqual(zeroconfTxt({ ...ls[0]!, proxyToZeroconf: 'c' }, 'amd64'), ['weight=0.5']);
});

test('Zeroconf plan: what avahi-publish-service can announce as lukko.conf says, and what it cannot', () => {
  const ls = parseConfigText(
    [
      'listener {\n bind "*:22"\n zeroconf_service lukko\n tag web\n}',
      'listener {\n bind "*:2222"\n}',
      'listener {\n bind "*:23"\n zeroconf_service lukko\n zeroconf_interface eth0\n}',
      'listener {\n bind "192.0.2.1:24"\n zeroconf_service lukko\n}',
      'listener {\n bind "0.0.0.0:25"\n zeroconf_service _sftp-ssh._tcp\n}',
      'listener {\n bind "/run/x"\n zeroconf_service lukko\n}',
      'listener {\n bind "*:26"\n zeroconf_service "bad_name"\n}',
    ].join('\n') + '\n',
    { path: '/x.conf' },
  ).listeners;
  const p = planZeroconf(ls);
  assert.deepEqual(
    p.services.map((s) => [s.where, s.type, s.port, s.tag]),
    [['/x.conf:1', '_lukko._tcp', 22, 'web'], ['/x.conf:18', '_sftp-ssh._tcp', 25, '']],
  );
  assert.equal(p.errors.length, 4);
  assert.match(p.errors[0]!, /x.conf:9: not published: it would be announced on eth0 only/);
  assert.match(p.errors[1]!, /x.conf:14: not published: it would be announced on the interface of 192.0.2.1 only/);
  assert.match(p.errors[2]!, /local socket/);
  assert.match(p.errors[3]!, /bad_name/);
  assert.deepEqual(p.warnings, ['listener at /x.conf:18: announced over IPv4 and IPv6 (the original would use inet only)']);
});

test('per-listener visibility state files (spec §6.2): first directory that has the file wins', () => {
  const base = mkdtempSync(join(tmpdir(), 'lukko-zc-state-'));
  const [run, etc] = [join(base, 'run'), join(base, 'etc')];
  const put = (dir: string, tag: string, text: string): void => {
    mkdirSync(join(dir, 'lukko/listener', tag), { recursive: true });
    writeFileSync(join(dir, 'lukko/listener', tag, 'zeroconf'), text);
  };
  put(etc, 'a', '0\n');
  put(etc, 'b', '0');
  put(run, 'b', ' 1 \n');
  put(etc, 'c', 'maybe');
  const dirs = [run, etc];
  assert.equal(listenerVisible('a', dirs), false);
  assert.equal(listenerVisible('b', dirs), true);
  assert.equal(listenerVisible('c', dirs), true);
  assert.equal(listenerVisible('none', dirs), true);
  assert.equal(listenerVisible('', dirs), true);
  assert.equal(listenerVisible('../a', dirs), true);
});
