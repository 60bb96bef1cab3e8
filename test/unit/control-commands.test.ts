import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  childTagsMatch,
  interpretControlCommand,
  parseTerminateChildrenPayload,
  parseVerbosePayload,
} from '../../src/companion/control-commands.ts';
import type { ControlAction } from '../../src/companion/control-commands.ts';
import { ControlCommandNumber, decodeControlDatagram } from '../../src/companion/control-codec.ts';
import type { ControlCommandName } from '../../src/companion/control-codec.ts';

const vectors = (
  JSON.parse(
    readFileSync(new URL('../../../shared/testdata/protocol-vectors.json', import.meta.url), 'utf8'),
  ) as { control: Record<string, { hex: string }> }
).control;

const C = ControlCommandNumber;
const act = (command: number, payload: Buffer | string = Buffer.alloc(0)): ControlAction =>
  interpretControlCommand({ command, payload: typeof payload === 'string' ? Buffer.from(payload, 'hex') : payload });

// What lukko is asked to do by each vector (spec §3.5); for M4 the packet before the error.
const actions: Record<string, ControlAction[]> = {
  V1: [{ kind: 'ignored', command: 0, name: 'NOP' }],
  V2: [{ kind: 'verbose', level: 3 }],
  V3: [{ kind: 'disable-zeroconf' }],
  V4: [{ kind: 'enable-zeroconf' }],
  V5: [{ kind: 'terminate-children', tag: 'site-42' }],
  V6: [{ kind: 'disable-zeroconf' }, { kind: 'terminate-children', tag: 'abcd' }],
  V7: [],
  V8: [{ kind: 'invalid', command: 7, name: 'VERBOSE', error: 'VERBOSE payload must be 1 byte (length=2)' }],
  M1: [],
  M2: [],
  M3: [],
  M4: [{ kind: 'disable-zeroconf' }],
  M5: [],
  'M5-empty': [],
};

test('every control vector asks for the spec\'s actions', () => {
  assert.deepEqual(Object.keys(actions).sort(), Object.keys(vectors).sort());
  for (const [name, expected] of Object.entries(actions)) {
    const r = decodeControlDatagram(Buffer.from(vectors[name]!.hex, 'hex'));
    const commands = r.ok ? r.commands : r.prefix;
    assert.equal(r.ok, name.startsWith('V'), name);
    assert.deepEqual(commands.map(interpretControlCommand), expected, name);
  }
});

test('VERBOSE: exactly one byte, any value 0 to 255', () => {
  for (const level of [0, 1, 2, 3, 9, 255]) {
    assert.deepEqual(parseVerbosePayload(Buffer.from([level])), { ok: true, level });
    assert.deepEqual(act(C.VERBOSE, Buffer.from([level])), { kind: 'verbose', level });
  }
  for (const len of [0, 2, 4]) {
    assert.deepEqual(parseVerbosePayload(Buffer.alloc(len)), {
      ok: false,
      error: `VERBOSE payload must be 1 byte (length=${len})`,
    });
    assert.equal(act(C.VERBOSE, Buffer.alloc(len)).kind, 'invalid');
  }
});

test('DISABLE_ZEROCONF / ENABLE_ZEROCONF ignore their payload, as the original does', () => {
  assert.deepEqual(act(C.DISABLE_ZEROCONF), { kind: 'disable-zeroconf' });
  assert.deepEqual(act(C.DISABLE_ZEROCONF, 'deadbeef'), { kind: 'disable-zeroconf' });
  assert.deepEqual(act(C.ENABLE_ZEROCONF), { kind: 'enable-zeroconf' });
  assert.deepEqual(act(C.ENABLE_ZEROCONF, '00'), { kind: 'enable-zeroconf' });
});

test('TERMINATE_CHILDREN: the raw tag, not trimmed, not NUL-terminated', () => {
  assert.deepEqual(parseTerminateChildrenPayload(Buffer.from('site-42')), { ok: true, tag: 'site-42' });
  assert.deepEqual(parseTerminateChildrenPayload(Buffer.from(' a b ')), { ok: true, tag: ' a b ' });
  assert.deepEqual(parseTerminateChildrenPayload(Buffer.from('\n')), { ok: true, tag: '\n' });
  assert.deepEqual(parseTerminateChildrenPayload(Buffer.from('kundé-ä')), { ok: true, tag: 'kundé-ä' });
  // A leading byte-order mark is part of the tag, not stripped.
  assert.deepEqual(parseTerminateChildrenPayload(Buffer.from('efbbbf78', 'hex')), { ok: true, tag: '\ufeffx' });
  assert.deepEqual(act(C.TERMINATE_CHILDREN, Buffer.from('acct42')), { kind: 'terminate-children', tag: 'acct42' });
});

test('TERMINATE_CHILDREN refuses an empty tag, a NUL byte and invalid UTF-8', () => {
  const cases: [string, string][] = [
    ['', 'TERMINATE_CHILDREN without a tag'],
    ['6100', 'TERMINATE_CHILDREN tag contains a NUL byte'],
    ['00', 'TERMINATE_CHILDREN tag contains a NUL byte'],
    ['61006200', 'TERMINATE_CHILDREN tag contains a NUL byte'],
    ['ff', 'TERMINATE_CHILDREN tag is not valid UTF-8'],
    ['61c3', 'TERMINATE_CHILDREN tag is not valid UTF-8'],
    ['eda080', 'TERMINATE_CHILDREN tag is not valid UTF-8'], // a UTF-16 surrogate
  ];
  for (const [hex, error] of cases) {
    assert.deepEqual(parseTerminateChildrenPayload(Buffer.from(hex, 'hex')), { ok: false, error }, hex);
    assert.deepEqual(act(C.TERMINATE_CHILDREN, hex), { kind: 'invalid', command: 16, name: 'TERMINATE_CHILDREN', error }, hex);
  }
});

test('RELOAD_STATE is reported, whatever its payload', () => {
  assert.deepEqual(act(C.RELOAD_STATE), { kind: 'reload-state' });
  assert.deepEqual(act(C.RELOAD_STATE, '01020304'), { kind: 'reload-state' });
});

test('NOP and every other known command is recognised and ignored', () => {
  const handled = new Set<number>([C.VERBOSE, C.DISABLE_ZEROCONF, C.ENABLE_ZEROCONF, C.TERMINATE_CHILDREN, C.RELOAD_STATE]);
  let ignored = 0;
  for (const [name, n] of Object.entries(C) as [ControlCommandName, number][]) {
    if (handled.has(n)) continue;
    assert.deepEqual(act(n, '01'), { kind: 'ignored', command: n, name }, name);
    ignored++;
  }
  assert.equal(ignored, 22);
  assert.deepEqual(act(C.FADE_CHILDREN), { kind: 'ignored', command: 8, name: 'FADE_CHILDREN' });
  assert.deepEqual(act(C.TARPIT_CLIENT, '7f000001'), { kind: 'ignored', command: 24, name: 'TARPIT_CLIENT' });
});

test('unknown command numbers are ignored without a name', () => {
  for (const n of [27, 100, 0xffff]) assert.deepEqual(act(n, '0102'), { kind: 'ignored', command: n, name: undefined });
});

test('child tag matching: one element equal exactly, list or NUL-separated string', () => {
  assert.equal(childTagsMatch(['a', 'site-42'], 'site-42'), true);
  assert.equal(childTagsMatch('a\0site-42', 'site-42'), true);
  assert.equal(childTagsMatch('site-42', 'site-42'), true);
  assert.equal(childTagsMatch('a\0site-42\0b', 'site-4'), false);
  assert.equal(childTagsMatch('a\0site-42\0b', 'a\0site-42'), false);
  assert.equal(childTagsMatch(['Site-42'], 'site-42'), false);
  assert.equal(childTagsMatch([' site-42'], 'site-42'), false);
  assert.equal(childTagsMatch([], 'site-42'), false);
  assert.equal(childTagsMatch('', ''), false);
  assert.equal(childTagsMatch('a\0\0b', ''), false);
  assert.equal(childTagsMatch([''], ''), false);
});
