// lukko against a scripted translation server that answers with exactly the bytes a test
// chooses: the spec's request vectors on the wire, and every kind of broken answer, each of
// which must end in a clean DISCONNECT 7 "Configuration server failed", a log line saying
// what was wrong, and a per-connection process that exits 0.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodePacket, encodeStringPacket, encodeU32 } from '../../src/translation/codec.ts';
import { TranslationCommand as C } from '../../src/translation/commands.ts';
import type { Server, World } from '../helpers/fixture.ts';
import { childExits, cleanup, makeWorld, publicKey, settled, ssh, startServer } from '../helpers/fixture.ts';
import type { ScriptedServer } from '../helpers/translation.ts';
import { scriptedServer, sshPassword } from '../helpers/translation.ts';

let world: World;
let server: Server;
let ts: ScriptedServer;

const hex = (h: string): Buffer => Buffer.from(h, 'hex');
const BEGIN = encodePacket(C.BEGIN, Buffer.from([3]));
const END = encodePacket(C.END);

/** A valid account for `carol` (not in /etc/passwd) with the world's ed25519 key inline. */
function account(extra: Buffer[] = [], keys = true): Buffer {
  const alice = world.users.alice!;
  return Buffer.concat([
    BEGIN,
    ...(keys ? [encodeStringPacket(C.AUTHORIZED_KEYS, publicKey(world.keys.ed25519!) + '\n')] : []),
    encodePacket(C.UID_GID, encodeU32(alice.uid, alice.gid)),
    encodeStringPacket(C.HOME, alice.home),
    encodeStringPacket(C.SHELL, '/bin/bash'),
    ...extra,
    END,
  ]);
}

before(async () => {
  world = makeWorld();
  const address = join(world.dir, 'translation.socket');
  ts = await scriptedServer(address);
  appendFileSync(world.configPath, `translation_server "${address}"\n`);
  server = await startServer(world, { env: { LUKKO_TRANSLATION_TIMEOUT_MS: '1500' } });
});

after(async () => {
  await server?.stop();
  await ts?.close();
  if (world) cleanup(world);
});

async function loginExpectingFailure(name: string): Promise<void> {
  await settled(server);
  const before = childExits(server).length;
  const r = await ssh(server, world.keys.ed25519, 'carol', ['true']);
  assert.equal(r.code, 255, `${name}: ${r.stderr}`);
  assert.match(r.stderr, /Received disconnect from 127\.0\.0\.1 port \d+:7: Configuration server failed/, `${name}: ${r.stderr}`);
  await settled(server);
  const exits = childExits(server).slice(before);
  assert.deepEqual(exits, [0], `${name}: per-connection exit codes`);
}

function lastFailure(): Record<string, unknown> {
  const e = server.events().filter((x) => x.msg === 'translation server failed' || typeof x.msg === 'string' && (x.msg as string).startsWith('login refused'));
  assert.ok(e.length > 0, 'a log line about the translation server');
  return e[e.length - 1]!;
}

describe('requests on the wire', () => {
  test('a key login sends one LOGIN request for the none probe and reuses it for the key (TV1)', async () => {
    ts.requests.length = 0;
    ts.answer = account();
    const r = await ssh(server, world.keys.ed25519, 'carol', ['id -u; echo $HOME']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${world.users.alice!.uid}\n${world.users.alice!.home}\n`);
    assert.equal(ts.requests.length, 1, 'one request for none + publickey query + signed publickey');
    assert.equal(ts.requests[0]!.toString('hex'), '000001000000a4000300a80073736805000e00636172' + '6f6c00000200');
  });

  test('a password login sends USER and PASSWORD exactly as the spec vector (TV2 without tag)', async () => {
    ts.requests.length = 0;
    ts.answer = account([], false);
    const r = await sshPassword(server, world.dir, 'alice', 's3cret', ['true']);
    assert.equal(r.code, 0, r.stderr);
    const expected = '000001000000a4000300a80073736805000e00616c6963650600a60073336372657400000200';
    assert.ok(ts.requests.some((q) => q.toString('hex') === expected), ts.requests.map((q) => q.toString('hex')).join('\n'));
  });
});

describe('broken answers end the login cleanly', () => {
  const cases: [string, () => Buffer | 'hang' | 'close', string][] = [
    ['TV11: a packet lukko does not know (PATH)', () => hex('01000100030800a500e8030000e80300000b0043002f686f6d652f616c696365020006002f7800000200'), 'unknown'],
    ['TV12: success without HOME', () => hex('01000100030800a500e8030000e803000000000200'), 'invalid-account'],
    ['END instead of BEGIN', () => hex('00000200'), 'no-begin'],
    ['STATUS with a 1-byte payload', () => hex('0100010003' + '0100050094' + '00000200'), 'malformed'],
    ['bytes after END', () => Buffer.concat([account(), hex('00000100')]), 'excessive-data'],
    ['EOF before END', () => account().subarray(0, -4), 'hung-up'],
    ['a length that runs past the end', () => Buffer.concat([BEGIN, hex('6400430041')]), 'hung-up'],
    ['UID_GID with 6 bytes', () => Buffer.concat([BEGIN, encodePacket(C.UID_GID, Buffer.alloc(6, 1)), END]), 'malformed'],
    ['two HOME packets in one partition', () => account([encodeStringPacket(C.HOME, '/tmp')]), 'duplicate'],
    ['a second BEGIN', () => Buffer.concat([BEGIN, BEGIN, END]), 'double-begin'],
    ['a partition field out of order (APPEND before EXECUTE in sftp)', () => account([encodeStringPacket(C.SERVICE, 'sftp'), encodeStringPacket(C.APPEND, '-e')]), 'misplaced'],
    ['MOUNT_HOME before HOME in a partition', () => account([encodeStringPacket(C.SERVICE, 'sftp'), encodeStringPacket(C.MOUNT_HOME, '/home')]), 'misplaced'],
    ['USER in a response', () => account([encodeStringPacket(C.USER, 'root')]), 'unknown'],
    ['a request packet (PASSWORD) in a response', () => account([encodeStringPacket(C.PASSWORD, 'x')]), 'request-packet'],
    ['more than 1 MiB', () => Buffer.concat([BEGIN, ...Array.from({ length: 17 }, () => encodePacket(C.MESSAGE, Buffer.alloc(65535, 0x41)))]), 'too-large'],
    ['the connection closes at once', () => 'close', 'hung-up'],
    ['no answer within the timeout', () => 'hang', 'timeout'],
  ];
  for (const [name, answer, rule] of cases) {
    test(name, async () => {
      ts.answer = answer();
      await loginExpectingFailure(name);
      assert.equal(lastFailure().rule, rule);
    });
  }

  test('an unreachable server', async () => {
    const saved = ts;
    await ts.close();
    try {
      await loginExpectingFailure('unreachable');
      assert.equal(lastFailure().rule, 'unreachable');
    } finally {
      ts = await scriptedServer(saved.address);
    }
  });

  test('a response asking for isolation this release cannot enforce refuses the login, naming the packet', async () => {
    // Enforced packets (PID_NAMESPACE) pass; STDERR_NULL and a named PID namespace do not.
    ts.answer = account([encodePacket(C.PID_NAMESPACE_NAME, Buffer.from('shared')), encodePacket(C.STDERR_NULL), encodePacket(C.MOUNT_PROC)]);
    await loginExpectingFailure('unenforceable');
    const e = lastFailure();
    assert.deepEqual(e.packets, ['PID_NAMESPACE_NAME', 'STDERR_NULL']);
    assert.match(String(e.msg), /PID_NAMESPACE_NAME, STDERR_NULL/);
  });

  test('after all that, a good answer logs in', async () => {
    ts.answer = account();
    const r = await ssh(server, world.keys.ed25519, 'carol', ['echo ok']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
  });
});
