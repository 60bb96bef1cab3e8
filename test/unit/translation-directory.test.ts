// The per-connection cache with the original's semantics, against a real AF_UNIX server.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { encodePacket, encodeStringPacket, encodeU16, encodeU32 } from '../../src/translation/codec.ts';
import { TranslationCommand as C } from '../../src/translation/commands.ts';
import { translationDirectory } from '../../src/translation/directory.ts';
import { TranslationError } from '../../src/translation/errors.ts';
import type { ScriptedServer } from '../helpers/translation.ts';
import { scriptedServer } from '../helpers/translation.ts';

const dir = mkdtempSync(join(tmpdir(), 'lukko-directory-'));
let ts: ScriptedServer;

const ok = Buffer.concat([
  encodePacket(C.BEGIN),
  encodePacket(C.UID_GID, encodeU32(1000, 1000)),
  encodeStringPacket(C.HOME, '/home/alice'),
  encodePacket(C.END),
]);
const refused = Buffer.concat([encodePacket(C.BEGIN), encodePacket(C.STATUS, encodeU16(403)), encodePacket(C.END)]);
const hasPassword = (packets: { command: number }[]) => packets.some((p) => p.command === C.PASSWORD);

before(async () => {
  ts = await scriptedServer(join(dir, 'ts.socket'));
});
after(async () => {
  await ts.close();
  rmSync(dir, { recursive: true, force: true });
});

test('lookups for the same user reuse one response; another user asks again', async () => {
  ts.requests.length = 0;
  ts.answer = ok;
  const d = translationDirectory({ address: ts.address });
  assert.equal((await d.lookup('alice')).found, true);
  assert.equal((await d.lookup('alice')).found, true);
  assert.equal(ts.requests.length, 1);
  await d.lookup('bob');
  await d.lookup('alice');
  assert.equal(ts.requests.length, 3, 'the cache holds the last response only');
});

test('every password check asks; its response replaces the cache even when it refuses', async () => {
  ts.requests.length = 0;
  ts.answer = (packets) => (hasPassword(packets) ? refused : ok);
  const d = translationDirectory({ address: ts.address });
  assert.equal((await d.lookup('alice')).found, true);
  assert.equal((await d.checkPassword!('alice', 'wrong')).found, false);
  assert.equal((await d.checkPassword!('alice', 'wrong again')).found, false);
  assert.equal(ts.requests.length, 3);
  // As the original: a later key attempt for alice reuses the refusal.
  const after = await d.lookup('alice');
  assert.equal(after.found, false);
  assert.equal(ts.requests.length, 3);
});

test('LISTENER_TAG and PEEK go into the request when the listener has them', async () => {
  ts.requests.length = 0;
  ts.answer = ok;
  await translationDirectory({ address: ts.address, listenerTag: 'front', peek: true }).lookup('bob');
  assert.equal(ts.requests[0]!.toString('hex'), '000001000000a4000300a8007373680500940066726f6e7403000e00626f620000140100000200');
});

test('a password the original cannot send (over 256 bytes) is a translation failure, nothing is sent', async () => {
  ts.requests.length = 0;
  const d = translationDirectory({ address: ts.address });
  await assert.rejects(d.checkPassword!('alice', 'x'.repeat(257)), TranslationError);
  assert.equal(ts.requests.length, 0);
});
