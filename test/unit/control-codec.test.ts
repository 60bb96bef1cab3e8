import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  CONTROL_MAGIC,
  CONTROL_MAX_DATAGRAM,
  CONTROL_MAX_PAYLOAD,
  ControlCommandNumber,
  controlCommandName,
  decodeControlDatagram,
  encodeControlDatagram,
} from '../../src/companion/control-codec.ts';
import type { ControlCommand, ControlCommandInput } from '../../src/companion/control-codec.ts';

interface Vector {
  hex: string;
  expect: string;
}

const vectors = (
  JSON.parse(
    readFileSync(new URL('../../../shared/testdata/protocol-vectors.json', import.meta.url), 'utf8'),
  ) as { control: Record<string, Vector> }
).control;

const C = ControlCommandNumber;
const cmd = (command: number, hex = ''): ControlCommand => ({ command, payload: Buffer.from(hex, 'hex') });

// What each vector of spec §3.5 decodes to.
const valid: Record<string, ControlCommand[]> = {
  V1: [cmd(C.NOP)],
  V2: [cmd(C.VERBOSE, '03')],
  V3: [cmd(C.DISABLE_ZEROCONF)],
  V4: [cmd(C.ENABLE_ZEROCONF)],
  V5: [cmd(C.TERMINATE_CHILDREN, Buffer.from('site-42').toString('hex'))],
  V6: [cmd(C.DISABLE_ZEROCONF), cmd(C.TERMINATE_CHILDREN, '61626364')],
  V7: [],
  V8: [cmd(C.VERBOSE, '0300')],
};

const malformed: Record<string, { error: string; prefix: ControlCommand[] }> = {
  M1: { error: 'wrong magic', prefix: [] },
  M2: { error: 'odd control packet (length=5)', prefix: [] },
  M3: { error: 'partial payload (length=4, expected=8)', prefix: [] },
  M4: { error: 'partial payload (length=4, expected=8)', prefix: [cmd(C.DISABLE_ZEROCONF)] },
  M5: { error: 'wrong magic', prefix: [] },
  'M5-empty': { error: 'wrong magic', prefix: [] },
};

test('every control vector in the shared test data has an expectation here', () => {
  assert.deepEqual(Object.keys(vectors).sort(), [...Object.keys(valid), ...Object.keys(malformed)].sort());
});

for (const [name, expected] of Object.entries(valid)) {
  test(`vector ${name} decodes to its commands and re-encodes byte for byte`, () => {
    const v = vectors[name];
    assert.ok(v, `vector ${name} missing`);
    const bytes = Buffer.from(v.hex, 'hex');
    const r = decodeControlDatagram(bytes);
    assert.deepEqual(r, { ok: true, commands: expected });
    assert.equal(encodeControlDatagram(expected).toString('hex'), v.hex);
  });
}

for (const [name, expected] of Object.entries(malformed)) {
  test(`vector ${name} is refused with the original's error`, () => {
    const v = vectors[name];
    assert.ok(v, `vector ${name} missing`);
    const r = decodeControlDatagram(Buffer.from(v.hex, 'hex'));
    assert.deepEqual(r, { ok: false, error: expected.error, prefix: expected.prefix });
    // The error named in the shared data is the one we give.
    assert.ok(v.expect.includes(`\`${expected.error}\``), `${v.expect} does not name ${expected.error}`);
  });
}

test('command numbers: the 27 of the original, 0 to 26, each name once', () => {
  const entries = Object.entries(ControlCommandNumber);
  assert.equal(entries.length, 27);
  assert.deepEqual(entries.map(([, n]) => n).sort((a, b) => a - b), [...Array(27).keys()]);
  for (const [name, n] of entries) assert.equal(controlCommandName(n), name);
  assert.equal(C.VERBOSE, 7);
  assert.equal(C.DISABLE_ZEROCONF, 9);
  assert.equal(C.ENABLE_ZEROCONF, 10);
  assert.equal(C.TERMINATE_CHILDREN, 16);
  assert.equal(C.RELOAD_STATE, 19);
  assert.equal(C.EXPIRE_TCACHE_TAG, 26);
  assert.equal(controlCommandName(27), undefined);
  assert.equal(controlCommandName(0xffff), undefined);
  assert.equal(controlCommandName(-1), undefined);
});

test('magic is 63 04 61 01, big-endian', () => {
  assert.equal(CONTROL_MAGIC, 0x63046101);
  assert.equal(encodeControlDatagram([]).toString('hex'), '63046101');
});

test('header is big-endian length then command; payload padded to 4 with zeros', () => {
  const out = encodeControlDatagram([
    { command: 0x1234, payload: Buffer.from('0102030405', 'hex') },
    { command: 0x0102 },
    { command: 3, payload: Buffer.from('aabbccdd', 'hex') },
  ]);
  assert.equal(out.toString('hex'), '63046101' + '00051234' + '0102030405000000' + '00000102' + '00040003' + 'aabbccdd');
});

test('padding for payload lengths 0 to 8 is (4 - len % 4) % 4', () => {
  for (let len = 0; len <= 8; len++) {
    const out = encodeControlDatagram([{ command: 1, payload: Buffer.alloc(len, 0xee) }]);
    assert.equal(out.length, 4 + 4 + len + ((4 - (len % 4)) % 4), `len ${len}`);
    assert.equal(out.length % 4, 0);
    assert.deepEqual(decodeControlDatagram(out), { ok: true, commands: [cmd(1, 'ee'.repeat(len))] });
  }
});

test('padding content is not checked (as in the original); re-encoding writes zeros', () => {
  const r = decodeControlDatagram(Buffer.from('63046101' + '00010007' + '03ffffff' + '00000009', 'hex'));
  assert.deepEqual(r, { ok: true, commands: [cmd(C.VERBOSE, '03'), cmd(C.DISABLE_ZEROCONF)] });
  assert.equal(encodeControlDatagram(r.ok ? r.commands : []).toString('hex'), '63046101000100070300000000000009');
});

test('unknown command numbers decode like any other', () => {
  const r = decodeControlDatagram(Buffer.from('63046101' + '0002ffff' + 'abcd0000', 'hex'));
  assert.deepEqual(r, { ok: true, commands: [cmd(0xffff, 'abcd')] });
});

test('wrong magic: short, empty, byte-swapped, off by one', () => {
  for (const hex of ['', '63', '630461', '01610463', '63046100', '63046102' + '00000000', 'ffffffff']) {
    assert.deepEqual(decodeControlDatagram(Buffer.from(hex, 'hex')), { ok: false, error: 'wrong magic', prefix: [] }, hex);
  }
});

test('odd control packet: remainders 1 to 3 bytes, checked before any packet', () => {
  for (const extra of [1, 2, 3, 5, 6, 7]) {
    const buf = Buffer.concat([encodeControlDatagram([{ command: C.DISABLE_ZEROCONF }]).subarray(0, 4), Buffer.alloc(extra)]);
    assert.deepEqual(decodeControlDatagram(buf), { ok: false, error: `odd control packet (length=${extra})`, prefix: [] });
  }
  // A valid first packet does not run when the total length is odd.
  const buf = Buffer.from('63046101' + '00000009' + '00', 'hex');
  assert.deepEqual(decodeControlDatagram(buf), { ok: false, error: 'odd control packet (length=5)', prefix: [] });
});

test('partial payload reports what remains and what the header claims', () => {
  assert.deepEqual(decodeControlDatagram(Buffer.from('63046101' + 'ffff0010', 'hex')), {
    ok: false,
    error: 'partial payload (length=0, expected=65535)',
    prefix: [],
  });
  assert.deepEqual(decodeControlDatagram(Buffer.from('63046101' + '00050007' + '01020304', 'hex')), {
    ok: false,
    error: 'partial payload (length=4, expected=5)',
    prefix: [],
  });
});

test('every cut of a datagram: wrong magic, odd length, a clean prefix, or partial payload', () => {
  const commands = [
    { command: C.DISABLE_ZEROCONF },
    { command: C.VERBOSE, payload: Buffer.from([2]) },
    { command: C.TERMINATE_CHILDREN, payload: Buffer.from('tenant-7') },
    { command: 200, payload: Buffer.from('xyzxyz') },
  ].map((c) => cmd(c.command, (c.payload ?? Buffer.alloc(0)).toString('hex')));
  const full = encodeControlDatagram(commands);
  // Offsets where each packet ends.
  const ends: number[] = [];
  let pos = 4;
  for (const c of commands) {
    pos += 4 + c.payload.length + ((4 - (c.payload.length % 4)) % 4);
    ends.push(pos);
  }
  assert.equal(pos, full.length);
  for (let len = 0; len <= full.length; len++) {
    const r = decodeControlDatagram(full.subarray(0, len));
    const whole = ends.filter((e) => e <= len).length;
    if (len < 4) assert.deepEqual(r, { ok: false, error: 'wrong magic', prefix: [] });
    else if ((len - 4) % 4 !== 0) assert.deepEqual(r, { ok: false, error: `odd control packet (length=${len - 4})`, prefix: [] });
    else if (len === 4 || ends.includes(len)) assert.deepEqual(r, { ok: true, commands: commands.slice(0, whole) });
    else {
      assert.equal(r.ok, false, `len ${len}`);
      assert.match(r.ok ? '' : r.error, /^partial payload \(length=\d+, expected=\d+\)$/);
      assert.deepEqual(r.ok ? [] : r.prefix, commands.slice(0, whole));
    }
  }
});

test('random command lists round-trip through encode and decode', () => {
  let seed = 0x2545f491;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (let round = 0; round < 300; round++) {
    const list: ControlCommand[] = [];
    const count = rand(12);
    for (let i = 0; i < count; i++) {
      const payload = Buffer.alloc(rand(50));
      for (let j = 0; j < payload.length; j++) payload[j] = rand(256);
      list.push({ command: rand(0x10000), payload });
    }
    const bytes = encodeControlDatagram(list);
    assert.equal(bytes.length % 4, 0);
    assert.deepEqual(decodeControlDatagram(bytes), { ok: true, commands: list });
    assert.deepEqual(encodeControlDatagram(list), bytes);
  }
});

test('decoded payloads are copies, not views of the receive buffer', () => {
  const buf = Buffer.from('63046101' + '00040010' + '61626364', 'hex');
  const r = decodeControlDatagram(buf);
  buf.fill(0);
  assert.deepEqual(r, { ok: true, commands: [cmd(C.TERMINATE_CHILDREN, '61626364')] });
});

test('size limits: 4096 bytes decode, 4097 and more are refused whole', () => {
  assert.equal(CONTROL_MAX_DATAGRAM, 4096);
  assert.equal(CONTROL_MAX_PAYLOAD, 4088);
  const biggest = encodeControlDatagram([{ command: C.NOP, payload: Buffer.alloc(CONTROL_MAX_PAYLOAD, 1) }]);
  assert.equal(biggest.length, 4096);
  const r = decodeControlDatagram(biggest);
  assert.equal(r.ok, true);
  assert.equal(r.ok && r.commands[0]?.payload.length, CONTROL_MAX_PAYLOAD);

  // 1024 NOPs fill 4096 bytes after the magic: valid as packets, but more than the original reads.
  const tooLong = Buffer.concat([biggest.subarray(0, 4), Buffer.alloc(4096)]);
  assert.deepEqual(decodeControlDatagram(tooLong), {
    ok: false,
    error: 'datagram too long (length=4100, max=4096)',
    prefix: [],
  });
  // Wrong magic is reported first, whatever the length.
  assert.deepEqual(decodeControlDatagram(Buffer.alloc(5000)), { ok: false, error: 'wrong magic', prefix: [] });
});

test('encoder refuses what the format or the 4096-byte limit cannot carry', () => {
  const bad: ControlCommandInput[][] = [
    [{ command: -1 }],
    [{ command: 0x10000 }],
    [{ command: 1.5 }],
    [{ command: Number.NaN }],
    [{ command: 0, payload: Buffer.alloc(0x10000) }],
    [{ command: 0, payload: Buffer.alloc(CONTROL_MAX_PAYLOAD + 1) }],
    [{ command: 0, payload: Buffer.alloc(CONTROL_MAX_PAYLOAD) }, { command: 0 }],
    Array.from({ length: 1024 }, () => ({ command: 0 })),
  ];
  for (const list of bad) assert.throws(() => encodeControlDatagram(list), RangeError);
  assert.equal(encodeControlDatagram(Array.from({ length: 1023 }, () => ({ command: 0 }))).length, 4096);
});

test('an omitted payload and an empty one encode the same', () => {
  assert.deepEqual(
    encodeControlDatagram([{ command: C.ENABLE_ZEROCONF }]),
    encodeControlDatagram([{ command: C.ENABLE_ZEROCONF, payload: Buffer.alloc(0) }]),
  );
});
