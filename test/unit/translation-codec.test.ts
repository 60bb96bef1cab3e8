import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_MAX_RESPONSE_BYTES, ResponseDecoder, decodePacket, decodePackets, encodePacket, encodePackets,
  encodeStringPacket, encodeU16, encodeU32,
} from '../../src/translation/codec.ts';
import { TranslationCommand as C, describeCommand, translationCommandName } from '../../src/translation/commands.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const BEGIN = encodePacket(C.BEGIN);
const END = encodePacket(C.END);

test('command numbers: spot checks against the spec, names both ways, 25 unassigned', () => {
  assert.equal(C.BEGIN, 1);
  assert.equal(C.USER, 14);
  assert.equal(C.LISTENER_TAG, 148);
  assert.equal(C.LOGIN, 164);
  assert.equal(C.UID_GID, 165);
  assert.equal(C.PASSWORD, 166);
  assert.equal(C.SERVICE, 168);
  assert.equal(C.AUTHORIZED_KEYS, 248);
  assert.equal(C.NO_HOME_AUTHORIZED_KEYS, 255);
  assert.equal(C.PEEK, 276);
  assert.equal(C.PROCESS_NAME, 286);
  assert.equal(translationCommandName(244), 'NO_PASSWORD');
  assert.equal(translationCommandName(25), undefined);
  assert.equal(translationCommandName(287), undefined);
  assert.equal(describeCommand(287), '#287');
  // Every number from 1 to 286 except 25 has exactly one name.
  const numbers = Object.values(C).sort((a, b) => a - b);
  assert.equal(new Set(numbers).size, numbers.length);
  assert.deepEqual(numbers, Array.from({ length: 286 }, (_, i) => i + 1).filter((n) => n !== 25));
});

test('encodePacket: little-endian length and command, then the payload', () => {
  assert.deepEqual(encodePacket(C.PEEK), hex('0000 1401'));
  assert.deepEqual(encodePacket(0x1234, hex('aabbcc')), hex('0300 3412 aabbcc'));
  assert.deepEqual(encodePacket(1, Buffer.alloc(0x0102)).subarray(0, 2), hex('0201'));
});

test('encodePacket: 65535 payload bytes fit, 65536 do not; commands are u16', () => {
  assert.equal(encodePacket(C.MESSAGE, Buffer.alloc(0xffff)).length, 0xffff + 4);
  assert.throws(() => encodePacket(C.MESSAGE, Buffer.alloc(0x10000)), RangeError);
  assert.throws(() => encodePacket(0x10000), RangeError);
  assert.throws(() => encodePacket(-1), RangeError);
});

test('strings are sent without terminator and refused with a NUL', () => {
  assert.deepEqual(encodeStringPacket(C.SERVICE, 'ssh'), hex('0300 a800 737368'));
  assert.deepEqual(encodeStringPacket(C.HOME, 'ä'), hex('0200 4300 c3a4'));
  assert.throws(() => encodeStringPacket(C.USER, 'a\0b'), /NUL/);
});

test('integers are little-endian and unpadded', () => {
  assert.deepEqual(encodeU16(404), hex('9401'));
  assert.deepEqual(encodeU16(0o022), hex('1200'));
  assert.deepEqual(encodeU32(1000, 100, 27), hex('e8030000 64000000 1b000000'));
  assert.deepEqual(encodeU32(0x01020304), hex('04030201'));
});

test('decodePacket: a whole packet, the offset of the next one, and a copy of the payload', () => {
  const bytes = Buffer.concat([encodePacket(C.USER, Buffer.from('bob')), END]);
  const d = decodePacket(bytes);
  assert.equal(d.kind, 'packet');
  if (d.kind !== 'packet') return;
  assert.equal(d.packet.command, C.USER);
  assert.equal(d.packet.payload.toString(), 'bob');
  assert.equal(d.next, 7);
  bytes[4] = 0x78;
  assert.equal(d.packet.payload.toString(), 'bob');
  const e = decodePacket(bytes, d.next);
  assert.equal(e.kind === 'packet' && e.packet.command, C.END);
});

test('decodePacket: short header and short payload ask for exactly the missing bytes', () => {
  assert.deepEqual(decodePacket(hex('')), { kind: 'need-more', missing: 4 });
  assert.deepEqual(decodePacket(hex('05')), { kind: 'need-more', missing: 3 });
  assert.deepEqual(decodePacket(hex('0500 0e00 6162')), { kind: 'need-more', missing: 3 });
  // A u8 view over a larger buffer is read where it starts.
  const outer = hex('ffff 0000 0200');
  const inner = new Uint8Array(outer.buffer, outer.byteOffset + 2, 4);
  assert.equal(decodePacket(inner).kind, 'packet');
});

test('a response is complete at END, and needs more before it', () => {
  const bytes = Buffer.concat([BEGIN, encodePacket(C.STATUS, encodeU16(404)), END]);
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.equal(decodePackets(bytes.subarray(0, cut)).kind, 'need-more', `cut at ${cut}`);
  }
  const d = decodePackets(bytes);
  assert.equal(d.kind, 'complete');
  assert.deepEqual(d.kind === 'complete' && d.packets.map((p) => p.command), [C.BEGIN, C.STATUS, C.END]);
});

test('split input: any two-piece split gives the same packets as one piece', () => {
  const bytes = Buffer.concat([BEGIN, encodeStringPacket(C.HOME, '/home/x'), encodePacket(C.UID_GID, encodeU32(5, 6)), END]);
  const whole = decodePackets(bytes);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new ResponseDecoder();
    decoder.push(bytes.subarray(0, cut));
    assert.deepEqual(decoder.push(bytes.subarray(cut)), whole, `cut at ${cut}`);
  }
});

test('missing END: the input ends (EOF) before END, also mid-packet and when empty', () => {
  for (const bytes of [hex(''), BEGIN, Buffer.concat([BEGIN, hex('0500 0e00 61')])]) {
    const d = decodePackets(bytes, { eof: true });
    assert.equal(d.kind, 'malformed');
    assert.equal(d.kind === 'malformed' && d.error.rule, 'hung-up');
  }
  const decoder = new ResponseDecoder();
  decoder.push(BEGIN);
  assert.equal(decoder.end().kind, 'malformed');
});

test('the first packet must be BEGIN (a response starting with END)', () => {
  const d = decodePackets(hex('0000 0200'));
  assert.equal(d.kind === 'malformed' && d.error.rule, 'no-begin');
  const e = decodePackets(Buffer.concat([encodePacket(C.STATUS, encodeU16(404)), END]));
  assert.equal(e.kind === 'malformed' && e.error.packet, 'STATUS');
});

test('a second BEGIN is an error', () => {
  const d = decodePackets(Buffer.concat([BEGIN, BEGIN, END]));
  assert.equal(d.kind === 'malformed' && d.error.rule, 'double-begin');
});

test('excessive data: bytes after END in the same piece or a later one', () => {
  const d = decodePackets(Buffer.concat([BEGIN, END, hex('00')]));
  assert.equal(d.kind === 'malformed' && d.error.rule, 'excessive-data');
  const decoder = new ResponseDecoder();
  assert.equal(decoder.push(Buffer.concat([BEGIN, END])).kind, 'complete');
  assert.equal(decoder.push(hex('00')).kind, 'malformed');
  assert.equal(decoder.state.kind === 'malformed' && decoder.state.error.rule, 'excessive-data');
  // An empty read changes nothing.
  const quiet = new ResponseDecoder();
  quiet.push(Buffer.concat([BEGIN, END]));
  assert.equal(quiet.push(hex('')).kind, 'complete');
});

test('size limit: refused as soon as a header announces too much, and when packets add up', () => {
  const big = Buffer.concat([BEGIN, hex('ffff bc00')]); // a 65535-byte MESSAGE announced
  const d = decodePackets(big, { maxBytes: 1000 });
  assert.equal(d.kind === 'malformed' && d.error.rule, 'too-large');
  assert.equal(decodePackets(big).kind, 'need-more'); // fits the default limit

  const many = Buffer.concat([BEGIN, ...Array.from({ length: 10 }, () => encodePacket(C.SETENV, Buffer.from('A=1'))), END]);
  assert.equal(decodePackets(many, { maxBytes: many.length }).kind, 'complete');
  const over = decodePackets(many, { maxBytes: many.length - 1 });
  assert.equal(over.kind === 'malformed' && over.error.rule, 'too-large');

  // Byte by byte, the limit holds too.
  const decoder = new ResponseDecoder({ maxBytes: many.length - 1 });
  let last = decoder.state;
  for (const byte of many) last = decoder.push(Buffer.of(byte));
  assert.equal(last.kind === 'malformed' && last.error.rule, 'too-large');
  assert.equal(DEFAULT_MAX_RESPONSE_BYTES, 1024 * 1024);
});

test('after an error the decoder stays failed', () => {
  const decoder = new ResponseDecoder();
  decoder.push(hex('0000 0200'));
  assert.equal(decoder.push(Buffer.concat([BEGIN, END])).kind, 'malformed');
  assert.equal(decoder.end().kind, 'malformed');
});

test('encodePackets: concatenation of whole packets', () => {
  const packets = [{ command: C.BEGIN, payload: Buffer.of(3) }, { command: C.END, payload: Buffer.alloc(0) }];
  assert.deepEqual(encodePackets(packets), hex('0100 0100 03 0000 0200'));
  const d = decodePackets(encodePackets(packets));
  assert.deepEqual(d.kind === 'complete' && d.packets, packets);
});
